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
    // Requests arriving as the server freezes must not queue for a pooled connection, nor retry a
    // read for another full server selection: each would add its wait to the bound. Callers retry
    // at their own level (the client with its Idempotency-Key, BullMQ with back-off).
    waitQueueTimeoutMS: options.timeoutMs,
    retryReads: false,
    retryWrites: false,
    heartbeatFrequencyMS: 2000,
    maxPoolSize: 50,
  };
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
