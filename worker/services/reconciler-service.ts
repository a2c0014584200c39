import { holdsEffects, type Logger, type Order } from '#common';
import type { ReconcileRepository } from '../repositories/reconcile-repository.js';

/** What one reconciler tick found and did. */
export interface ReconcileReport {
  /** PENDING orders never enqueued (the api lost Redis or crashed between insert and add). */
  unqueued: number;
  /** PENDING/PROCESSING orders whose job was gone from Redis (Redis lost its data). */
  missingJob: number;
  /** In-flight orders whose job sat in the failed set (a crash between two writes); made coherent. */
  failedJob: number;
  /** Jobs added again (same job id, so never a duplicate). */
  reenqueued: number;
  /** Ended orders whose event job was missing from the `notifications` queue (lost between transition and add); added. */
  eventReadded: number;
  /** Cancelled orders still holding effects whose job was missing or dead: their job was added or retried, so the worker undoes them. */
  compensationDue: number;
  /** In-flight orders looked at. */
  scanned: number;
  /** True when a bound stopped the tick early; the next tick continues. */
  truncated: boolean;
}

/** A tick's report before it has found anything. */
export function emptyReconcileReport(): ReconcileReport {
  return {
    unqueued: 0,
    missingJob: 0,
    failedJob: 0,
    compensationDue: 0,
    reenqueued: 0,
    eventReadded: 0,
    scanned: 0,
    truncated: false,
  };
}

/** Where an order's job stands in Redis. */
export type JobPresence = 'missing' | 'failed' | 'queued';

/** Redis-side needs of the reconciler: the jobs of the `orders` queue. */
export interface OrderJobStore {
  /** Adds the jobs of these orders (job id = order id, so existing jobs are left as they are). */
  enqueueMany(orders: readonly Order[]): Promise<void>;
  /** For each id, where its job stands (one round trip). */
  jobStates(ids: readonly string[]): Promise<JobPresence[]>;
  /** Retries a failed job with its attempt counters reset. */
  retryFailed(orderId: string): Promise<void>;
}

/** The statuses that end an order and produce an event (see common/notifications/order-events.ts). */
export const ENDED_STATUSES = ['PROCESSED', 'REJECTED', 'FAILED', 'CANCELLED'] as const;
export type EndedStatus = (typeof ENDED_STATUSES)[number];

/** Redis-side needs for order events (webhooks on only): the jobs of the `notifications` queue. */
export interface OrderEventStore {
  /** For each ended order, whether its event job (`<orderId>-<status>`) exists (one round trip). */
  exists(orders: readonly { readonly id: string; readonly status: EndedStatus }[]): Promise<boolean[]>;
  /** Adds the events of these orders (job id from order id and status, so an existing job is left as it is). */
  addMany(orders: readonly (Order & { readonly status: EndedStatus })[]): Promise<void>;
}

export type Reconciler = ReturnType<typeof createReconciler>;

/**
 * The outbox's safety net. Each tick re-adds the job of (1) every PENDING order with no
 * `enqueuedAt` older than the grace period and (2) every PENDING/PROCESSING order whose job no longer
 * exists in Redis. Adding uses the order id as job id, so running a tick twice, or on two workers,
 * adds nothing twice. Bounded: at most `batchSize` × `maxPages` orders per kind per tick.
 *
 * With `events` (webhooks on), it also re-adds (3) the event of every order that ended (PROCESSED,
 * REJECTED, FAILED, CANCELLED) within `eventLookBackMs` before the grace period and whose event job is
 * not in the `notifications` queue: the process that made the transition died before adding it. The
 * job id is the publisher's, so an event added meanwhile, or already delivered (kept a week), is not
 * added twice; only orders whose job was really missing are counted. The walk goes on from where the
 * previous tick stopped, so each ended order is checked about once.
 */
export function createReconciler(deps: {
  readonly repository: ReconcileRepository;
  /** The worker's one path for an order whose job is dead (PROCESSING → FAILED); see the processing service. */
  readonly onJobDead: (orderId: string, reason: string) => Promise<unknown>;
  readonly jobs: OrderJobStore;
  /** Absent when webhooks are off: no event is checked. */
  readonly events?: OrderEventStore;
  /** How far before the grace period ended orders are checked for their event (default 10 minutes). */
  readonly eventLookBackMs?: number;
  readonly logger: Logger;
  readonly graceMs: number;
  readonly batchSize?: number;
  readonly maxPages?: number;
  readonly now?: () => Date;
}) {
  const { repository, jobs, logger } = deps;
  const batchSize = deps.batchSize ?? 500;
  const maxPages = deps.maxPages ?? 10;
  const now = deps.now ?? (() => new Date());
  const eventLookBackMs = deps.eventLookBackMs ?? 600_000;

  type Cursor = { updatedAt: Date; id: string };

  /**
   * Walks pages of orders from `start` (a page's last order is the next one's cursor), at most
   * `maxPages`, handing each to `onPage`; says in the report when the bound stopped it. Returns where it stopped.
   */
  async function walk(
    fetchPage: (after: Cursor | undefined) => Promise<Order[]>,
    onPage: (batch: Order[]) => Promise<void>,
    report: ReconcileReport,
    start?: Cursor,
  ): Promise<Cursor | undefined> {
    let after = start;
    for (let page = 0; page < maxPages; page += 1) {
      const batch = await fetchPage(after);
      if (batch.length === 0) break;
      await onPage(batch);
      const last = batch[batch.length - 1];
      after = { updatedAt: last.updatedAt, id: last.id };
      if (batch.length < batchSize) break;
      if (page === maxPages - 1) report.truncated = true;
    }
    return after;
  }

  /**
   * Cancelled orders still marked `compensationDue` (orderMoves.cancel) and last changed before the
   * grace period: one that holds nothing loses its mark; one that still holds effects needs its job to
   * run, so a missing job is added and a dead one retried (a queued one will run by itself). This is
   * what makes a cancel whose job could not be queued (Redis away) end compensated.
   */
  async function driveCompensations(before: Date, report: ReconcileReport): Promise<void> {
    await walk(
      (after) => repository.findCompensationDue(before, batchSize, after),
      async (batch) => {
        await repository.clearCompensationDue(batch.filter((o) => !holdsEffects(o)).map((o) => o.id));
        const holding = batch.filter(holdsEffects);
        if (holding.length === 0) return;
        const states = await jobs.jobStates(holding.map((o) => o.id));
        const missing = holding.filter((_, i) => states[i] === 'missing');
        const dead = holding.filter((_, i) => states[i] === 'failed');
        if (missing.length + dead.length === 0) return;
        logger.warn(
          { orderIds: [...missing, ...dead].slice(0, 20).map((o) => o.id), count: missing.length + dead.length },
          'cancelled orders still hold effects and their job would not run; queuing it so the worker undoes them',
        );
        await jobs.enqueueMany(missing);
        for (const order of dead) await jobs.retryFailed(order.id);
        report.compensationDue += missing.length + dead.length;
        report.reenqueued += missing.length + dead.length;
      },
      report,
    );
  }

  /** One round trip to Redis and one to MongoDB for a whole batch. */
  async function requeue(batch: readonly Order[]): Promise<void> {
    if (batch.length === 0) return;
    await jobs.enqueueMany(batch);
    await repository.markEnqueuedMany(
      batch.map((o) => o.id),
      now(),
    );
  }

  /**
   * Where the last tick's walk over each ended status stopped: the next tick goes on from there, so each
   * ended order is checked about once and a truncated walk makes progress. Per process (a restart, or
   * another worker, starts at the window's beginning; re-checking is harmless).
   */
  const eventCursors = new Map<EndedStatus, { updatedAt: Date; id: string }>();

  /** Walks the orders ended in [before − look-back, before) and adds the events missing from Redis. */
  async function readdEvents(events: OrderEventStore, before: Date, report: ReconcileReport): Promise<void> {
    const since = new Date(before.getTime() - eventLookBackMs);
    for (const status of ENDED_STATUSES) {
      const cursor = eventCursors.get(status);
      const stoppedAt = await walk(
        (after) => repository.findEnded(status, since, before, batchSize, after),
        async (page) => {
          const batch = page as (Order & { status: EndedStatus })[];
          const present = await events.exists(batch);
          const missing = batch.filter((_, i) => !present[i]);
          if (missing.length === 0) return;
          logger.warn(
            { orderIds: missing.slice(0, 20).map((o) => o.id), status, count: missing.length },
            'order events missing from the notifications queue; adding them again',
          );
          await events.addMany(missing);
          report.eventReadded += missing.length;
        },
        report,
        cursor && cursor.updatedAt >= since ? cursor : undefined,
      );
      if (stoppedAt) eventCursors.set(status, stoppedAt);
    }
  }

  return {
    async tick(): Promise<ReconcileReport> {
      const before = new Date(now().getTime() - deps.graceMs);
      const report = emptyReconcileReport();

      const unqueued = await repository.findUnqueued(before, batchSize);
      report.unqueued = unqueued.length;
      if (unqueued.length === batchSize) report.truncated = true;
      await requeue(unqueued);
      report.reenqueued += unqueued.length;

      for (const status of ['PENDING', 'PROCESSING'] as const) {
        await walk(
          (after) => repository.findInFlight(status, before, batchSize, after),
          async (batch) => {
            report.scanned += batch.length;
            const states = await jobs.jobStates(batch.map((o) => o.id));
            const missing = batch.filter((_, i) => states[i] === 'missing');
            if (missing.length > 0) {
              logger.warn(
                { orderIds: missing.slice(0, 20).map((o) => o.id), count: missing.length },
                'jobs missing from Redis; adding them again',
              );
              await requeue(missing);
              report.missingJob += missing.length;
              report.reenqueued += missing.length;
            }
            for (const [i, order] of batch.entries()) {
              if (states[i] === 'failed') {
                report.failedJob += 1;
                if (order.status === 'PENDING') {
                  // Reprocess moved the order to PENDING but its job was never retried.
                  logger.warn({ orderId: order.id }, 'PENDING order with a dead job; retrying the job');
                  await jobs.retryFailed(order.id);
                  report.reenqueued += 1;
                } else {
                  // The job died (e.g. stalled too often) but the order was never told.
                  logger.warn({ orderId: order.id }, 'PROCESSING order with a dead job; marking it FAILED');
                  await deps.onJobDead(order.id, 'job failed without finishing the order (found by the reconciler)');
                }
              }
            }
          },
          report,
        );
      }
      await driveCompensations(before, report);
      if (deps.events) await readdEvents(deps.events, before, report);
      const level = report.reenqueued > 0 || report.eventReadded > 0 ? 'warn' : 'debug';
      logger[level]({ ...report }, 'reconcile tick');
      return report;
    },
  };
}
