import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import type { Connection } from 'mongoose';
import { ORDERS_QUEUE, RECONCILE_QUEUE, RECONCILE_SCHEDULER_ID, type RedisClient } from '#common';

/** What the battery reads of an order. */
export interface OrderRow {
  readonly _id: string;
  readonly status: string;
  readonly attempts: number;
  readonly enqueuedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

// REJECTED and CANCELLED are final too (issue 13): an order refused for stock or payment is not lost.
const TERMINAL = new Set(['PROCESSED', 'FAILED', 'REJECTED', 'CANCELLED']);

/** Every order of the scenario's database (each scenario has a database of its own). */
export async function readOrders(db: Connection): Promise<Map<string, OrderRow>> {
  const rows = await db
    .collection<OrderRow>('orders')
    .find({}, { projection: { status: 1, attempts: 1, enqueuedAt: 1, createdAt: 1, updatedAt: 1 } })
    .toArray();
  return new Map(rows.map((r) => [r._id, r]));
}

/** Effect records per order id (`order_effects`): more than one for an order is a duplicate effect. */
export async function readEffects(db: Connection): Promise<Map<string, number>> {
  const rows = await db
    .collection<{ _id: string }>('order_effects')
    .find({}, { projection: { _id: 1 } })
    .toArray();
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r._id, (counts.get(r._id) ?? 0) + 1);
  return counts;
}

export interface Settlement {
  /** True when every order was final (PROCESSED, FAILED, REJECTED, CANCELLED) before the timeout. */
  readonly settled: boolean;
  /** How long the wait took. */
  readonly ms: number;
  readonly statuses: Record<string, number>;
  /** Orders neither PROCESSED nor FAILED (nor found) at the end: lost. */
  readonly lost: string[];
  /** The longest time an order was seen PROCESSING (now − last transition) during the wait. */
  readonly maxProcessingAgeMs: number;
}

/**
 * Polls until every order of `ids` is PROCESSED or FAILED, or `timeoutMs` passes. Meanwhile it
 * records the oldest PROCESSING order it sees: a crashed attempt that is never taken over shows as
 * an age that keeps growing.
 */
export async function waitSettled(
  db: Connection,
  ids: Iterable<string>,
  options: {
    readonly timeoutMs: number;
    readonly intervalMs?: number;
    readonly signal?: AbortSignal;
    readonly onPoll?: (settled: number, total: number) => void;
  },
): Promise<Settlement> {
  const wanted = [...new Set(ids)];
  const started = Date.now();
  let maxProcessingAgeMs = 0;
  for (;;) {
    const orders = await readOrders(db);
    const now = Date.now();
    const statuses: Record<string, number> = {};
    const lost: string[] = [];
    for (const id of wanted) {
      const row = orders.get(id);
      const status = row?.status ?? 'MISSING';
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (!TERMINAL.has(status)) lost.push(id);
    }
    for (const row of orders.values()) {
      if (row.status === 'PROCESSING') maxProcessingAgeMs = Math.max(maxProcessingAgeMs, now - row.updatedAt.getTime());
    }
    options.onPoll?.(wanted.length - lost.length, wanted.length);
    const ms = Date.now() - started;
    if (lost.length === 0 || ms >= options.timeoutMs || options.signal?.aborted) {
      return { settled: lost.length === 0, ms, statuses, lost, maxProcessingAgeMs };
    }
    await sleep(options.intervalMs ?? 500, undefined, { signal: options.signal }).catch(() => undefined);
  }
}

/** The effect figures of a set of orders. */
export interface EffectReport {
  /** Orders with more than one effect record. */
  readonly duplicates: number;
  /** PROCESSED orders without an effect record (the business step's result went missing). */
  readonly processedWithoutEffect: number;
  /** FAILED orders that have an effect record (the step ran, the order says it did not). */
  readonly failedWithEffect: number;
  readonly effects: number;
}

export async function effectReport(db: Connection, ids: Iterable<string>): Promise<EffectReport> {
  const [orders, effects] = await Promise.all([readOrders(db), readEffects(db)]);
  let duplicates = 0;
  let processedWithoutEffect = 0;
  let failedWithEffect = 0;
  let total = 0;
  for (const id of new Set(ids)) {
    const n = effects.get(id) ?? 0;
    total += n;
    if (n > 1) duplicates += 1;
    const status = orders.get(id)?.status;
    if (status === 'PROCESSED' && n === 0) processedWithoutEffect += 1;
    if (status === 'FAILED' && n > 0) failedWithEffect += 1;
  }
  return { duplicates, processedWithoutEffect, failedWithEffect, effects: total };
}

/** Jobs of the `orders` queue by state. */
export async function jobCounts(redis: RedisClient, prefix: string): Promise<Record<string, number>> {
  const queue = new Queue(ORDERS_QUEUE, { connection: redis, prefix });
  try {
    return await queue.getJobCounts(
      'waiting',
      'active',
      'delayed',
      'prioritized',
      'completed',
      'failed',
      'waiting-children',
    );
  } finally {
    await queue.close();
  }
}

/** How many of `ids` have a job (of any state) in Redis. */
export async function jobsPresent(redis: RedisClient, prefix: string, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.exists(`${prefix}:${ORDERS_QUEUE}:${id}`);
  const results = (await pipeline.exec()) ?? [];
  return results.filter(([err, n]) => !err && n === 1).length;
}

/** True when the reconciler's job scheduler exists in Redis. */
export async function reconcileScheduleExists(redis: RedisClient, prefix: string): Promise<boolean> {
  const queue = new Queue(RECONCILE_QUEUE, { connection: redis, prefix });
  try {
    return (await queue.getJobScheduler(RECONCILE_SCHEDULER_ID)) != null;
  } finally {
    await queue.close();
  }
}
