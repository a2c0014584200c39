import { randomBytes } from 'node:crypto';
import { Queue, UnrecoverableError, Worker, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type mongoose from 'mongoose';
import {
  ORDERS_QUEUE,
  PROCESS_ORDER_JOB,
  PUBLIC_SCOPE,
  orderJob,
  orderJobOptions,
  type OrderDocument,
  type OrderStatus,
} from '#common';
import { pollUntil } from './backends.js';

/** The body every load generator posts: valid for the real api, and what the bare baselines store. */
export const ORDER_BODY = {
  customerId: 'c-bench',
  items: [
    { sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 },
    { sku: 'SKU-2', quantity: 1, unitPriceCents: 990 },
  ],
  currency: 'EUR',
} as const;

/**
 * The customers the bench's traffic comes from. One customer would be held to its fair share (a
 * quarter of the fleet's concurrency, docs/design.md) and past 600 orders a minute behind everyone
 * else: a flood, which the fairness phase measures on purpose. Everywhere else the bench is a shop's
 * ordinary traffic, spread over this many customers, each well under the burst limit.
 */
export const BENCH_CUSTOMERS = 1000;

/** The customer of the bench's i-th order (round robin over {@link BENCH_CUSTOMERS}). */
export function benchCustomer(i: number): string {
  return `c-bench-${String(i % BENCH_CUSTOMERS).padStart(4, '0')}`;
}

/** {@link ORDER_BODY} of each bench customer, serialized once. */
const BODIES = Array.from({ length: BENCH_CUSTOMERS }, (_, i) =>
  Buffer.from(JSON.stringify({ ...ORDER_BODY, customerId: benchCustomer(i) })),
);

/** The body of the bench's i-th order: {@link ORDER_BODY} from customer {@link benchCustomer}(i). */
export function orderBody(i: number): Buffer {
  return BODIES[i % BENCH_CUSTOMERS];
}

/** The job options the real api uses (docs/design.md defaults: 5 attempts, 1000 ms back-off). */
export const SYSTEM_JOB_OPTIONS: JobsOptions = orderJobOptions({ jobAttempts: 5, jobBackoffMs: 1000 });

const BATCH = 1000;

export function orderId(): string {
  return `ord_${randomBytes(16).toString('hex')}`;
}

/** A stored order as the real api writes it (common/mongo/order-model.ts), in `status`. */
export function systemOrder(status: OrderStatus, at: Date, customer: string): OrderDocument {
  const failed = status === 'FAILED';
  return {
    _id: orderId(),
    status,
    clientId: PUBLIC_SCOPE,
    customerId: customer,
    items: ORDER_BODY.items.map((i) => ({ ...i })),
    totalCents: 3490,
    currency: ORDER_BODY.currency,
    attempts: status === 'PENDING' ? 0 : failed ? 5 : 1,
    lastError: failed ? 'simulated failure (seed)' : null,
    history: [{ status: 'PENDING', at }, ...(status === 'PENDING' ? [] : [{ status, at }])],
    fingerprint: 'f'.repeat(64),
    correlationId: 'bench-seed',
    enqueuedAt: at,
    createdAt: at,
    updatedAt: at,
    processedAt: status === 'PROCESSED' ? at : null,
    failedAt: failed ? at : null,
  };
}

/** The SKUs of {@link ORDER_BODY}, each tracked with stock no run can exhaust. */
export const BENCH_STOCK = 1_000_000_000;

/**
 * Tracked stock for every SKU the bench orders (docs/design.md, "The order workflow"), on `db`, so the
 * real worker and the bare one both take the tracked path: each reserve and each sale is one
 * conditional updateOne that matches. Without it the SKUs are untracked and every item costs a
 * findOne more on reserve and on the sale. Upserts: a second call leaves the counts as they are.
 */
export async function seedInventory(db: mongoose.mongo.Db): Promise<void> {
  const at = new Date();
  await db.collection<{ _id: string }>('inventory').bulkWrite(
    ORDER_BODY.items.map((item) => ({
      updateOne: {
        filter: { _id: item.sku },
        update: { $setOnInsert: { available: BENCH_STOCK, reserved: 0, sold: 0, holds: [], updatedAt: at } },
        upsert: true,
      },
    })),
  );
}

/** A stored order as the bare intake writes it. */
export function bareOrder(at: Date, customer: string): { _id: string; [field: string]: unknown } {
  return { ...ORDER_BODY, customerId: customer, _id: orderId(), status: 'PENDING', createdAt: at };
}

/** A queue handle for the bench on `prefix` (its own connection is passed in and owned by the caller). */
export function benchQueue(connection: Redis, prefix: string): Queue {
  return new Queue(ORDERS_QUEUE, { connection, prefix });
}

/** The job the api adds for a standard order of `customer` (common/queues/orders-queue.ts), with its options. */
function systemJob(id: string, customer: string, now: Date) {
  const job = orderJob(
    { id, correlationId: 'bench', customerId: customer, priority: 'standard', notBefore: null },
    { now },
  );
  return { ...job, opts: { ...SYSTEM_JOB_OPTIONS, ...job.opts } };
}

/**
 * `count` orders waiting to be processed, as the api would leave them: stored PENDING (already
 * enqueued) and one job each, with the system's job options (`system`) or plain (`bare`); `raw`
 * adds jobs only. Returns the order ids.
 */
export async function seedWaiting(options: {
  readonly kind: 'system' | 'bare' | 'raw';
  readonly db: mongoose.mongo.Db | undefined;
  readonly queue: Queue;
  readonly count: number;
}): Promise<void> {
  const { kind, db, queue, count } = options;
  for (let done = 0; done < count; done += BATCH) {
    const n = Math.min(BATCH, count - done);
    const at = new Date();
    const ids: string[] = [];
    if (kind === 'raw') {
      for (let i = 0; i < n; i += 1) ids.push(orderId());
    } else {
      const docs =
        kind === 'system'
          ? Array.from({ length: n }, (_, i) => systemOrder('PENDING', at, benchCustomer(done + i)))
          : [];
      const bare = kind === 'bare' ? Array.from({ length: n }, (_, i) => bareOrder(at, benchCustomer(done + i))) : [];
      const all = [...docs, ...bare] as { _id: string }[];
      if (!db) throw new Error('seedWaiting needs a database for system and bare orders');
      await db.collection<{ _id: string }>('orders').insertMany(all, { ordered: false });
      ids.push(...all.map((d) => d._id));
    }
    // The system's jobs as the api adds them (with the customer: the worker's fair share applies).
    await queue.addBulk(
      ids.map((id, i) =>
        kind === 'system'
          ? systemJob(id, benchCustomer(done + i), at)
          : { name: PROCESS_ORDER_JOB, data: { orderId: id, correlationId: 'bench' }, opts: { jobId: id } },
      ),
    );
  }
}

/** Jobs the throwaway worker of {@link seedHistory} fails at once. */
const KILLER_CONCURRENCY = 200;

/** Orders per insertMany of {@link seedHistory}: few round trips, each well under a 16 MiB message. */
const HISTORY_BATCH = 10_000;

/**
 * History already in the database before a growth step: orders PROCESSED and, `failedShare` of
 * them, FAILED with their job in BullMQ's failed set (the dead-letter queue), as the system leaves
 * them. The orders go in large unordered insertMany batches, the next batch built while the last is
 * written. The dead jobs are made by BullMQ itself, through its public API: added, then failed by a
 * throwaway worker whose jobs fail at once (no real worker may run on the queue meanwhile: it would
 * take them).
 */
export async function seedHistory(options: {
  readonly db: mongoose.mongo.Db;
  readonly connection: Redis;
  readonly prefix: string;
  readonly count: number;
  readonly failedShare: number;
  readonly onProgress?: (done: number) => void;
}): Promise<{ failed: number }> {
  const { db, count, failedShare, connection, prefix } = options;
  const start = Date.now() - 3_600_000;
  const failedIds: string[] = [];
  const orders = db.collection<OrderDocument>('orders');
  let writing: Promise<unknown> = Promise.resolve();
  for (let done = 0; done < count; done += HISTORY_BATCH) {
    const n = Math.min(HISTORY_BATCH, count - done);
    const docs: OrderDocument[] = [];
    for (let i = 0; i < n; i += 1) {
      const at = new Date(start + ((done + i) % 3_000_000));
      // Every 1/failedShare-th order is dead; customers spread so per-customer listings have depth.
      const dead = (done + i) % Math.round(1 / failedShare) === 0;
      const doc = systemOrder(dead ? 'FAILED' : 'PROCESSED', at, `c-${(done + i) % 500}`);
      docs.push(doc);
      if (dead) failedIds.push(doc._id);
    }
    await writing;
    options.onProgress?.(done);
    writing = orders.insertMany(docs, { ordered: false });
  }
  await writing;
  options.onProgress?.(count);
  if (failedIds.length === 0) return { failed: 0 };

  const queue = benchQueue(connection, prefix);
  try {
    for (let i = 0; i < failedIds.length; i += BATCH) {
      await queue.addBulk(
        failedIds.slice(i, i + BATCH).map((id) => ({
          name: PROCESS_ORDER_JOB,
          data: { orderId: id, correlationId: 'bench-seed' },
          opts: { ...SYSTEM_JOB_OPTIONS, attempts: 1, jobId: id },
        })),
      );
    }
    const before = await queue.getFailedCount();
    const killerConnection = connection.duplicate();
    const killer = new Worker(
      ORDERS_QUEUE,
      async () => {
        throw new UnrecoverableError('simulated failure (seed)');
      },
      { connection: killerConnection, prefix, concurrency: KILLER_CONCURRENCY },
    );
    try {
      await pollUntil(async () => (await queue.getFailedCount()) >= before + failedIds.length, {
        timeoutMs: 120_000,
        everyMs: 100,
        message: () => `seeding ${failedIds.length} dead jobs did not finish within 120 s`,
      });
    } finally {
      await killer.close();
      killerConnection.disconnect();
    }
    return { failed: failedIds.length };
  } finally {
    await queue.close();
  }
}
