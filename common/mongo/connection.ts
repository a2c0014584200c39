import { setTimeout as sleep } from 'node:timers/promises';
import mongoose, { type Connection } from 'mongoose';
import type { Logger } from 'pino';
import { redactUrl } from '../logging/logger.js';
import { withTimeout } from '../lifecycle/process.js';

export interface MongoConnectionOptions {
  /**
   * How long an operation may wait for a reachable server before it fails. Short for the api (it
   * must answer 503 fast), longer for workers (a failed job is retried anyway).
   */
  readonly timeoutMs: number;
  readonly appName: string;
}

/**
 * A mongoose connection (not yet open) that never buffers: with MongoDB away an operation fails
 * after `timeoutMs` instead of hanging. Open it with {@link openMongo}.
 */
export function createMongoConnection(): Connection {
  const connection = mongoose.createConnection();
  // Operator objects in a filter ({ $ne: … }) are treated as values unless wrapped in
  // mongoose.trusted(): a user-supplied object can never become a query operator.
  connection.set('sanitizeFilter', true);
  return connection;
}

/** Bound for every read query of the system (all served by an index; slower means trouble). */
export const QUERY_MAX_TIME_MS = 2000;

function clientOptions(options: MongoConnectionOptions): mongoose.ConnectOptions {
  return {
    appName: options.appName,
    bufferCommands: false,
    autoIndex: false,
    autoCreate: false,
    serverSelectionTimeoutMS: options.timeoutMs,
    connectTimeoutMS: options.timeoutMs,
    // A frozen server (SIGSTOP) keeps sockets open and never answers: the socket timeout is what
    // bounds an operation then. Every query of this system is small and served by an index, so an
    // answer slower than this is an outage, not a slow query.
    socketTimeoutMS: options.timeoutMs,
    // Requests arriving as the server freezes must not queue for a pooled connection longer than the bound.
    waitQueueTimeoutMS: options.timeoutMs,
    // Replica sets (docs/design.md, "MongoDB replica sets"): a write is acknowledged once a majority
    // holds it, so an election never rolls back an order the api answered 201 for; reads and writes go
    // to the primary (the order path reads its own writes). An election or a dropped connection fails
    // an operation with a retryable error: the driver retries it once on the new primary. Every write
    // here is safe to repeat (an insert under a deterministic _id, conditional updates). The api bounds
    // an operation with its retry by its deadline (see `boundCalls`); a worker's job retries anyway.
    writeConcern: { w: 'majority' },
    readPreference: 'primary',
    retryReads: true,
    retryWrites: true,
    heartbeatFrequencyMS: 2000,
    maxPoolSize: 50,
  };
}

/** Thrown by {@link boundCalls}: MongoDB (and the driver's one retry) did not answer within the caller's bound. */
export class MongoDeadlineError extends Error {
  constructor(readonly ms: number) {
    super(`MongoDB did not answer within ${ms} ms`);
    this.name = 'MongoDeadlineError';
  }
}

/**
 * A batch write failed as a whole, before MongoDB answered for any document of it (the driver wraps a
 * network, pool or write-concern failure of an `insertMany` in a MongoBulkWriteError with no
 * per-document errors): like a lone write that timed out, its outcome is unknown and MongoDB is
 * unavailable for it (the api answers 503; an order stored anyway is found by the reconciler).
 */
export class MongoBatchUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MongoBatchUnavailableError';
  }
}

/**
 * `target` with every method's promise bounded by `ms`: past it, the call rejects with a
 * {@link MongoDeadlineError} (the api answers 503). This is what keeps the driver's retry of a
 * write or read inside the api's outage bound: the retry runs when the first failure came fast (a
 * step-down, a reset connection), and is cut off when it would not finish in time. The operation
 * itself may still complete afterwards, as with any timeout (a client retries with its Idempotency-Key).
 */
export function boundCalls<T extends object>(target: T, ms: number): T {
  const bounded: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(target)) {
    bounded[key] =
      typeof value === 'function'
        ? (...args: unknown[]) => {
            const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
            return result instanceof Promise ? withTimeout(result, ms, () => new MongoDeadlineError(ms)) : result;
          }
        : value;
  }
  return bounded as T;
}

/**
 * Opens the connection, retrying every `retryMs` until MongoDB answers or `signal` aborts. Once
 * open, the driver itself reconnects after an outage; only the first connection needs this loop.
 */
export async function openMongo(
  connection: Connection,
  url: string,
  options: MongoConnectionOptions & {
    readonly logger: Logger;
    readonly retryMs?: number;
    readonly signal?: AbortSignal;
  },
): Promise<void> {
  const retryMs = options.retryMs ?? 2000;
  for (let attempt = 1; ; attempt += 1) {
    try {
      await connection.openUri(url, clientOptions(options));
      if (attempt > 1) options.logger.info({ url: redactUrl(url) }, 'MongoDB connected');
      return;
    } catch (err) {
      if (options.signal?.aborted) throw err;
      const log = attempt === 1 || attempt % 15 === 0 ? options.logger.warn : options.logger.debug;
      log.call(
        options.logger,
        { err, url: redactUrl(url), attempt },
        `MongoDB did not answer; retrying every ${retryMs} ms (check MONGO_URL and that mongod runs)`,
      );
      await sleep(retryMs, undefined, { signal: options.signal }).catch(() => undefined);
      if (options.signal?.aborted) throw err;
    }
  }
}

/** Pings the server; rejects after `timeoutMs` at most. */
export async function pingMongo(connection: Connection, timeoutMs: number): Promise<void> {
  const db = connection.db;
  if (!db || connection.readyState !== mongoose.ConnectionStates.connected) {
    throw new Error('MongoDB connection is not open');
  }
  await withTimeout(db.command({ ping: 1 }), timeoutMs, `MongoDB did not answer ping within ${timeoutMs} ms`);
}
