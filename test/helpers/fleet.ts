import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import { Queue } from 'bullmq';
import mongoose, { type Connection } from 'mongoose';
import {
  ORDERS_QUEUE,
  createRedisConnection,
  loadConfig,
  redisMasters,
  type OrderView,
  type ProcessOrderJobData,
  type RedisClient,
} from '#common';
import { freePort } from '../../scripts/lib/embedded-services.js';
import {
  startReady,
  type ExitStatus,
  type RunningProcess,
  type ServiceName,
} from '../../scripts/lib/process-runner.js';
import { testServices, uniqueName } from './services.js';

/** One pino line, parsed; undefined for anything that is not a JSON object (stderr text, stack traces). */
export function parseLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The parsed log lines of a process whose `msg` is `msg`. */
export function logEntries(p: RunningProcess, msg: string): Record<string, unknown>[] {
  return p.lines.map(parseLine).filter((e): e is Record<string, unknown> => e?.msg === msg);
}

export interface FleetOptions {
  /** Worker processes to start (default 2). */
  readonly workers?: number;
  /** Start the api (default true). */
  readonly api?: boolean;
  /** Start the health process (default true). */
  readonly health?: boolean;
  /** Configuration variables for every process (override the fleet's own). */
  readonly env?: Record<string, string>;
  /** Prefix of the database name and queue prefix. */
  readonly label?: string;
  /**
   * A Sentinel or Cluster topology (scripts/lib/redis-topology.ts) instead of the shared Redis: its
   * variables go to every process, and on a Cluster the queue prefix is hash-tagged (`{name}`).
   */
  readonly topology?: { readonly kind: 'sentinel' | 'cluster'; readonly env: Readonly<Record<string, string>> };
}

export interface Fleet {
  /** Database name and queue prefix, unique to this fleet. */
  readonly name: string;
  readonly mongoUrl: string;
  readonly redisUrl: string;
  /** The fleet's QUEUE_PREFIX (`name`, or `{name}` on a Cluster). */
  readonly prefix: string;
  /** The environment every process of the fleet got (without per-process ports). */
  readonly env: Readonly<Record<string, string>>;
  readonly apiUrl: string;
  readonly healthUrl: string;
  readonly api: RunningProcess | undefined;
  readonly health: RunningProcess | undefined;
  readonly workers: RunningProcess[];
  /** Every process started through this fleet, in start order (added workers included). */
  readonly processes: RunningProcess[];
  /** Starts one more worker process (named `worker-N`) and waits until it runs. */
  addWorker(env?: Record<string, string>): Promise<RunningProcess>;
  /**
   * Starts another process on the fleet's database and queue, with `env` overriding the fleet's
   * (give a health or api process its own port); it is stopped, and its lines shown, with the fleet's.
   */
  startExtra(service: ServiceName, name: string, env?: Record<string, string>): Promise<RunningProcess>;
  /** SIGTERM to every process still running, at once; resolves with each one's exit status by name. */
  stop(timeoutMs?: number): Promise<Record<string, ExitStatus>>;
  /** The last `count` lines of every process, for a failure report. */
  tail(count?: number): string;
  /** A connection to the fleet's database (closed by {@link Fleet.cleanup}). */
  db(): Promise<Connection>;
  /** A BullMQ queue on the fleet's `orders` queue (closed by {@link Fleet.cleanup}). */
  queue(): Queue<ProcessOrderJobData>;
  /** Stops what is still running, deletes the database and the prefix's Redis keys, closes the test's connections. */
  cleanup(): Promise<void>;
}

/**
 * The real processes of the system (`node dist/<service>/main.js`) against the test's MongoDB and
 * Redis, on free ports, with a database and queue prefix of their own. Resolves once every process is ready.
 */
export async function startFleet(options: FleetOptions = {}): Promise<Fleet> {
  const services = await testServices();
  const name = uniqueName(options.label ?? 'e2e');
  const mongoUrl = services.mongoUrl(name);
  const [apiPort, healthPort] = await Promise.all([freePort(), freePort()]);
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    MONGO_URL: mongoUrl,
    REDIS_URL: services.redisUrl,
    QUEUE_PREFIX: options.topology?.kind === 'cluster' ? `{${name}}` : name,
    API_PORT: String(apiPort),
    HEALTH_PORT: String(healthPort),
    ...options.topology?.env,
    ...options.env,
  };
  const prefix = env.QUEUE_PREFIX;
  // The test's own connections go through the processes' factory, to the same topology.
  const connectRedis = (role: 'worker' | 'producer') =>
    createRedisConnection(loadConfig(env).redis, { role, connectionName: `test:${name}` });
  const processes: RunningProcess[] = [];
  const workers: RunningProcess[] = [];
  let workerCount = 0;
  let connection: Connection | undefined;
  let queue: Queue<ProcessOrderJobData> | undefined;
  let queueRedis: RedisClient | undefined;

  const start = async (service: ServiceName, procName: string, extra: Record<string, string> = {}) => {
    const p = await startReady(service, { ...env, ...extra }, { name: procName });
    processes.push(p);
    return p;
  };
  const addWorker = async (extra: Record<string, string> = {}) => {
    workerCount += 1;
    const index = workerCount; // taken before any await: workers may start concurrently
    // Each worker serves metrics on a port of its own: the default would collide on one machine.
    const p = await start('worker', `worker-${index}`, { WORKER_METRICS_PORT: String(await freePort()), ...extra });
    workers.push(p);
    return p;
  };

  const stop = async (timeoutMs = 20_000) => {
    const entries = await Promise.all(
      processes.map(async (p) => [p.name, await p.stop('SIGTERM', timeoutMs)] as const),
    );
    return Object.fromEntries(entries);
  };

  try {
    const [api, health] = await Promise.all([
      options.api === false ? undefined : start('api', 'api'),
      options.health === false ? undefined : start('health', 'health'),
      ...Array.from({ length: options.workers ?? 2 }, () => addWorker()),
    ]);
    return {
      name,
      mongoUrl,
      redisUrl: services.redisUrl,
      prefix,
      env,
      apiUrl: `http://127.0.0.1:${apiPort}`,
      healthUrl: `http://127.0.0.1:${healthPort}`,
      api,
      health,
      workers,
      processes,
      addWorker,
      startExtra: (service, procName, extra = {}) => start(service, procName, extra),
      stop,
      tail(count = 25) {
        return processes
          .map(
            (p) =>
              `----- ${p.name} (last ${count} of ${p.lines.length} lines) -----\n${p.lines.slice(-count).join('\n')}`,
          )
          .join('\n');
      },
      async db() {
        connection ??= await mongoose.createConnection(mongoUrl).asPromise();
        return connection;
      },
      queue() {
        queueRedis ??= connectRedis('worker');
        queue ??= new Queue<ProcessOrderJobData>(ORDERS_QUEUE, { connection: queueRedis, prefix });
        return queue;
      },
      async cleanup() {
        await stop(5000);
        // Every key of the fleet's prefix: the orders queue, the reconciler's queue, rate-limit counters.
        // SCAN is per node: on a Cluster every master is scanned (once the slot map is known).
        const redis = connectRedis('producer');
        redis.on('error', () => undefined);
        try {
          if (redis.status !== 'ready') {
            await Promise.race([new Promise((ready) => redis.once('ready', ready)), sleep(5000)]);
          }
          for (const node of redisMasters(redis)) {
            for await (const keys of node.scanStream({ match: `${prefix}:*`, count: 500 }) as AsyncIterable<string[]>) {
              if (keys.length > 0) await node.unlink(...keys);
            }
          }
        } catch {
          // a topology the test already stopped: nothing left to clean
        } finally {
          redis.disconnect();
        }
        await queue?.close().catch(() => undefined);
        queueRedis?.disconnect();
        const db =
          connection ??
          (await mongoose
            .createConnection(mongoUrl)
            .asPromise()
            .catch(() => undefined));
        await db?.dropDatabase().catch(() => undefined);
        await db?.close().catch(() => undefined);
      },
    };
  } catch (err) {
    await stop(5000);
    throw err;
  }
}

/**
 * {@link startFleet} for one test: when the test fails, its report gets the last lines of every
 * process; afterwards everything is stopped and the database and queue are dropped.
 */
export async function startTestFleet(t: ExecutionContext, options: FleetOptions = {}): Promise<Fleet> {
  const fleet = await startFleet(options);
  t.teardown(async () => {
    if (!t.passed) t.log(fleet.tail());
    await fleet.cleanup();
  });
  return fleet;
}

/** SIGTERMs the whole fleet and asserts every process exited 0 (no signal); returns the exit statuses. */
export async function stopAndExpectCleanExit(t: ExecutionContext, fleet: Fleet): Promise<Record<string, ExitStatus>> {
  const exits = await fleet.stop();
  for (const [name, status] of Object.entries(exits)) t.deepEqual(status, { code: 0, signal: null }, `${name} exits 0`);
  return exits;
}

/** An order body the api accepts; `n` varies the customer so orders are told apart in logs. */
export function orderBody(n: number) {
  return {
    customerId: `c-${n}`,
    items: [
      { sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 },
      { sku: 'SKU-2', quantity: 1, unitPriceCents: 99 },
    ],
    currency: 'EUR',
  };
}

export interface HttpResult<T> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

/** A JSON request; the body is parsed when the response is JSON. */
export async function requestJson<T = unknown>(
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<HttpResult<T>> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  const isJson = res.headers.get('content-type')?.includes('json') ?? false;
  return { status: res.status, headers: res.headers, body: (isJson && text ? JSON.parse(text) : text) as T };
}

/**
 * POSTs `count` orders, at most `concurrency` in flight; every response must be 201. Returns them in
 * order. `requestId(n)`, when given, is sent as the n-th request's `X-Request-Id`.
 */
export async function createOrders(
  apiUrl: string,
  count: number,
  concurrency = 20,
  requestId?: (n: number) => string,
): Promise<OrderView[]> {
  const created: OrderView[] = new Array<OrderView>(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const n = next++;
      const res = await requestJson<OrderView>(`${apiUrl}/orders`, {
        method: 'POST',
        body: orderBody(n),
        headers: requestId ? { 'x-request-id': requestId(n) } : {},
      });
      if (res.status !== 201)
        throw new Error(`POST /orders #${n}: expected 201, got ${res.status} ${JSON.stringify(res.body)}`);
      created[n] = res.body;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return created;
}

/** Every order the api lists for the query, following `nextCursor` pages of 100. */
export async function listAllOrders(apiUrl: string, query: { status?: string } = {}): Promise<OrderView[]> {
  const items: OrderView[] = [];
  let cursor: string | null = null;
  do {
    const params: URLSearchParams = new URLSearchParams({ limit: '100', ...query, ...(cursor ? { cursor } : {}) });
    const res: HttpResult<{ items: OrderView[]; nextCursor: string | null }> = await requestJson(
      `${apiUrl}/orders?${params}`,
    );
    if (res.status !== 200) throw new Error(`GET /orders?${params}: ${res.status} ${JSON.stringify(res.body)}`);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
  } while (cursor);
  return items;
}

/**
 * Calls `probe` every `intervalMs` until it returns something other than undefined; rejects after
 * `timeoutMs` with `what` and the last value the probe saw (via `describe`).
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  options: { readonly timeoutMs?: number; readonly intervalMs?: number; readonly describe?: () => string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${options.timeoutMs ?? 60_000} ms waiting for ${what}${options.describe ? `: ${options.describe()}` : ''}`,
      );
    }
    await sleep(options.intervalMs ?? 250);
  }
}

/** A count of values, e.g. orders by status: `{ PROCESSED: 190, PENDING: 10 }`. */
export function countBy<T>(values: readonly T[], key: (v: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[key(v)] = (counts[key(v)] ?? 0) + 1;
  return counts;
}
