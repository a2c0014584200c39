import { createHash } from 'node:crypto';
import {
  createLogContext,
  createLogger,
  findOrderById,
  loadConfig,
  type Order,
  type OrderDocument,
  type OrderStatus,
} from '#common';
import { storedOrder } from './orders.js';
import { waitFor } from './wait.js';
import { createWorkerContainer, type WorkerContainer } from '../../worker/container.js';
import { startTestApi, type TestApi } from './api.js';
import { call, validOrder, type OrderBody } from './api-http.js';
import { testServices, uniqueName } from './services.js';

/**
 * The real api in-process plus in-process workers that come and go, on one database and queue prefix
 * of their own: what the dead-letter tests need to fail orders, then change the worker and watch
 * them come back.
 */
export interface DeadLetterSystem {
  readonly name: string;
  readonly api: TestApi;
  /** Starts a worker on the system's database and queue; `env` overrides (e.g. `FAILURE_RATE`). */
  startWorker(env?: Record<string, string>): Promise<WorkerContainer>;
  /** Closes every worker started so far. */
  stopWorkers(): Promise<void>;
  /** The order as MongoDB holds it (whatever client owns it). */
  order(id: string): Promise<Order>;
  /** How many business effects the order has (0 or 1). */
  effects(id: string): Promise<number>;
  /** Closes workers and api, drops the database and the queue. */
  close(): Promise<void>;
}

/** Settings that keep a test fast and deterministic; the reconciler stays out of the way. */
export const FAST_ENV: Readonly<Record<string, string>> = Object.freeze({
  LOG_LEVEL: 'silent',
  NODE_ENV: 'test',
  WORKER_METRICS_PORT: '0',
  PROCESSING_DELAY_MS: '0',
  FAILURE_RATE: '0',
  JOB_ATTEMPTS: '2',
  JOB_BACKOFF_MS: '20',
  WORKER_CONCURRENCY: '5',
  RECONCILE_INTERVAL_MS: '600000',
  RECONCILE_GRACE_MS: '600000',
});

/** `env` goes to the api and, under each worker's own overrides, to every worker. */
export async function startDeadLetterSystem(
  label: string,
  env: Record<string, string> = {},
): Promise<DeadLetterSystem> {
  const services = await testServices();
  const name = uniqueName(label);
  const fullEnv: Record<string, string> = {
    ...FAST_ENV,
    MONGO_URL: services.mongoUrl(name),
    REDIS_URL: services.redisUrl,
    QUEUE_PREFIX: name,
    ...env,
  };
  // startTestApi's env overrides its own database name and prefix, so the api lands on `name` too.
  const api = await startTestApi(label, fullEnv);
  const workers: WorkerContainer[] = [];
  let closed = false;
  const stopWorkers = async () => {
    const running = workers.splice(0);
    await Promise.all(running.map((w) => w.close(5000).catch(() => false)));
  };
  return {
    name,
    api,
    async startWorker(workerEnv = {}) {
      const config = loadConfig({ ...fullEnv, ...workerEnv });
      const logContext = createLogContext();
      const logger = createLogger({ service: 'test', level: config.logLevel, context: logContext });
      const worker = createWorkerContainer({ config, logger, logContext, workerId: `test:${name}:${workers.length}` });
      workers.push(worker);
      await worker.connect();
      await worker.start();
      return worker;
    },
    stopWorkers,
    async order(id) {
      const order = await findOrderById(api.container.models.Order, id);
      if (!order) throw new Error(`order ${id} not found`);
      return order;
    },
    effects: (id) => api.container.models.Effect.countDocuments({ _id: id }),
    async close() {
      if (closed) return;
      closed = true;
      await stopWorkers();
      await api.close();
    },
  };
}

export { waitFor };

/** Resolves with the orders once each one satisfies `done`. */
export function waitForOrders(
  system: DeadLetterSystem,
  ids: readonly string[],
  what: string,
  done: (order: Order) => boolean,
  timeoutMs = 15_000,
): Promise<Order[]> {
  let last: Order[] = [];
  return waitFor(
    `${ids.length} order(s) ${what}`,
    async () => {
      last = await Promise.all(ids.map((id) => system.order(id)));
      return last.every(done) ? last : undefined;
    },
    timeoutMs,
    () => last.map((o) => `${o.id} ${o.status} attempts=${o.attempts}`).join(', '),
  );
}

/** Waits until the order's job is in `state` (BullMQ's name: 'failed', 'waiting', 'completed'…). */
export function waitForJobState(system: DeadLetterSystem, id: string, state: string, timeoutMs = 10_000) {
  let last = '';
  return waitFor(
    `job ${id} to be ${state}`,
    async () => {
      last = await system.api.container.queue.getJobState(id);
      return last === state ? true : undefined;
    },
    timeoutMs,
    () => `it is ${last}`,
  );
}

/** Posts `count` orders through the api (as the public client); returns their ids. */
export async function postOrders(system: DeadLetterSystem, count: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, n) => {
      const res = await call<OrderBody>(system.api, 'POST', '/orders', { json: validOrder({ customerId: `c-${n}` }) });
      if (res.status !== 201) throw new Error(`POST /orders answered ${res.status}: ${res.text}`);
      return res.body.id;
    }),
  );
}

/**
 * Dead orders made the real way: posted through the api, every attempt failed by a worker at
 * FAILURE_RATE 1 until the job is in the failed set and the order FAILED; that worker is then stopped,
 * so the caller decides what runs next.
 */
export async function makeDeadOrders(system: DeadLetterSystem, count: number): Promise<string[]> {
  await system.startWorker({ FAILURE_RATE: '1' });
  const ids = await postOrders(system, count);
  await waitForOrders(system, ids, 'FAILED', (o) => o.status === 'FAILED');
  for (const id of ids) await waitForJobState(system, id, 'failed');
  await system.stopWorkers();
  return ids;
}

/**
 * Stores an order directly, as the api and workers would have left it in `status` (a FAILED one with
 * the history of two failed attempts and `failedAt`). No job is added.
 */
export async function seedOrder(
  system: Pick<DeadLetterSystem, 'api'>,
  status: OrderStatus,
  overrides: Partial<OrderDocument> = {},
): Promise<string> {
  const at = overrides.createdAt ?? new Date();
  const failedAt = status === 'FAILED' ? (overrides.failedAt ?? at) : null;
  const history: OrderDocument['history'] = [{ status: 'PENDING', at }];
  if (status === 'FAILED') {
    history.push(
      { status: 'PROCESSING', at, attempt: 1 },
      { status: 'PENDING', at, reason: 'seeded failure 1' },
      { status: 'PROCESSING', at, attempt: 2 },
      { status: 'FAILED', at: failedAt ?? at, reason: 'seeded failure 2' },
    );
  } else if (status === 'PROCESSED') {
    history.push({ status: 'PROCESSING', at, attempt: 1 }, { status: 'PROCESSED', at });
  } else if (status !== 'PENDING') {
    history.push({ status, at });
  }
  const doc = storedOrder(
    status,
    {
      customerId: 'c-seed',
      attempts: status === 'FAILED' ? 2 : status === 'PROCESSED' ? 1 : 0,
      lastError: status === 'FAILED' ? 'seeded failure 2' : null,
      history,
      correlationId: 'seeded',
      processedAt: status === 'PROCESSED' ? at : null,
      failedAt,
      ...overrides,
    },
    at,
  );
  await system.api.container.models.Order.collection.insertOne(doc as never);
  return doc._id;
}

/** `API_KEYS` for two clients, `shop` (plain) and `ops` (admin), with the keys to present. */
export function apiKeysEnv(): { API_KEYS: string; shopKey: string; opsKey: string } {
  const shopKey = 'shop-key-0123456789abcdef';
  const opsKey = 'ops-key-fedcba9876543210';
  const sha = (key: string) => createHash('sha256').update(key).digest('hex');
  return { API_KEYS: `shop:${sha(shopKey)},ops:${sha(opsKey)}:admin`, shopKey, opsKey };
}
