import { AppError, reprocessedSinceLastFailure, type Logger, type Order } from '#common';
import { QueueUnavailableError, type DeadJobInfo, type OrderJobs } from '../repositories/order-jobs.js';
import type { DeadOrderFilter, OrderRepository } from '../repositories/order-repository.js';

/** The most orders one bulk reprocess call handles; larger sets are walked in batches of this. */
export const REPROCESS_BATCH = 100;
/** The most order ids a bulk request may list. */
export const REPROCESS_MAX_IDS = 1000;

export interface ReprocessResult {
  readonly order: Order;
  /** False when the order had already been brought back by an earlier identical call. */
  readonly changed: boolean;
}

export interface BulkReprocessResult {
  reprocessed: number;
  skipped: number;
  notFound: number;
}

/** How many candidates a dry run lists, next to its count. */
export const DRY_RUN_SAMPLE = 20;

/** One dead letter a filtered replay would take (a dry run's sample). */
export interface ReplayCandidate {
  readonly id: string;
  readonly orderId: string | null;
  readonly customerId: string | null;
  readonly failedAt: string | null;
  readonly failedReason: string | null;
}

/** A filtered replay's answer: what a dry run would take, or what one bounded batch did. */
export type FilteredReplayResult =
  | { readonly dryRun: true; readonly matched: number; readonly sample: readonly ReplayCandidate[] }
  | (BulkReprocessResult & { readonly dryRun: false; readonly remaining: number });

export type DlqService = ReturnType<typeof createDlqService>;

/**
 * The dead-letter workflow: list FAILED orders with their failed job, and bring them back
 * (FAILED → PENDING, the job retried with its attempts reset, or re-added when cleaned from Redis).
 */
export function createDlqService(deps: {
  readonly repository: OrderRepository;
  readonly jobs: OrderJobs;
  readonly logger: Logger;
  readonly now?: () => Date;
}) {
  const { repository, jobs, logger } = deps;
  const now = deps.now ?? (() => new Date());

  async function reprocess(id: string, who: { actor: string; reason?: string }): Promise<ReprocessResult> {
    const moved = await repository.reprocess(id, who.actor, who.reason);
    const order = moved ?? (await repository.findById(id));
    if (!order) throw new AppError('NOT_FOUND', `order ${id} not found`);
    if (!moved) {
      // A repeated call: an earlier one already brought the order back (it may be running by now).
      // Answer as the first call did, and make sure its job is queued; anything else is a 409.
      if (!reprocessedSinceLastFailure(order)) {
        throw new AppError('INVALID_STATE', `order ${id} is ${order.status}; only FAILED orders can be reprocessed`);
      }
      if (order.status !== 'PENDING') return { order, changed: false };
    }
    let action: Awaited<ReturnType<OrderJobs['revive']>>;
    try {
      action = await jobs.revive(order);
    } catch (err) {
      if (!(err instanceof QueueUnavailableError)) throw err;
      // Redis is away, but the order is PENDING already: the reconciler finds a PENDING order whose
      // job is failed or missing and revives it once Redis is back, so the request is accepted (like
      // an order taken while the queue is away), not failed.
      logger.warn(
        { err, orderId: id, actor: who.actor },
        'dead order reprocessed; its job is revived once Redis is back',
      );
      return { order, changed: moved !== null };
    }
    await repository.markEnqueued([id], now());
    logger.info({ orderId: id, action, actor: who.actor }, 'dead order reprocessed');
    return { order, changed: moved !== null };
  }

  /** Every dead order (walked in batches), or just the listed ones. */
  async function reprocessMany(input: {
    orderIds?: readonly string[];
    actor: string;
    reason?: string;
  }): Promise<BulkReprocessResult> {
    const result: BulkReprocessResult = { reprocessed: 0, skipped: 0, notFound: 0 };
    const one = async (id: string) => {
      try {
        const { changed } = await reprocess(id, input);
        if (changed) result.reprocessed += 1;
        else result.skipped += 1;
      } catch (err) {
        if (err instanceof AppError && err.code === 'NOT_FOUND') result.notFound += 1;
        else if (err instanceof AppError && err.code === 'INVALID_STATE') result.skipped += 1;
        else throw err;
      }
    };
    if (input.orderIds) {
      for (let i = 0; i < input.orderIds.length; i += REPROCESS_BATCH) {
        await Promise.all(input.orderIds.slice(i, i + REPROCESS_BATCH).map(one));
      }
      return result;
    }
    // Each batch moves its orders out of FAILED, so the first page is always the next batch. An
    // order seen twice (it failed again meanwhile) ends the walk: the call stays bounded.
    const seen = new Set<string>();
    for (;;) {
      const page = await repository.listDead({ limit: REPROCESS_BATCH });
      const fresh = page.items.filter((o) => !seen.has(o.id));
      if (fresh.length === 0) break;
      for (const o of fresh) seen.add(o.id);
      await Promise.all(fresh.map((o) => one(o.id)));
      if (!page.hasMore) break;
    }
    return result;
  }

  return {
    reprocess,

    async list(query: { limit: number; after?: { failedAt: Date; id: string } }) {
      const page = await repository.listDead(query);
      let deadJobs: (DeadJobInfo | null)[];
      try {
        deadJobs = await Promise.all(page.items.map((o) => jobs.deadJob(o.id)));
      } catch (err) {
        // Without Redis the jobs are unknown; "no job" would read as "cleaned", so say it is away.
        if (err instanceof QueueUnavailableError) {
          throw new AppError('SERVICE_UNAVAILABLE', 'the queue (Redis) is not reachable; retry later', { cause: err });
        }
        throw err;
      }
      return { items: page.items.map((order, i) => ({ order, job: deadJobs[i] })), hasMore: page.hasMore };
    },

    /**
     * A filtered replay: a dry run counts the dead orders that match (and lists a sample) and changes
     * nothing; otherwise at most `limit` of them (newest failure first) are reprocessed, and
     * `remaining` says how many still match afterwards, so a caller repeats until it is 0.
     */
    async replayMatching(input: {
      filter: DeadOrderFilter;
      limit: number;
      dryRun: boolean;
      actor: string;
      reason?: string;
    }): Promise<FilteredReplayResult> {
      if (input.dryRun) {
        const [matched, sample] = await Promise.all([
          repository.countDead(input.filter),
          repository.findDead(input.filter, Math.min(input.limit, DRY_RUN_SAMPLE)),
        ]);
        return {
          dryRun: true,
          matched,
          sample: sample.map((o) => ({
            id: o.id,
            orderId: o.id,
            customerId: o.customerId,
            failedAt: o.failedAt?.toISOString() ?? null,
            failedReason: o.lastError,
          })),
        };
      }
      const batch = await repository.findDead(input.filter, input.limit);
      const result = await reprocessMany({
        orderIds: batch.map((o) => o.id),
        actor: input.actor,
        reason: input.reason,
      });
      const remaining = await repository.countDead(input.filter);
      logger.info(
        { actor: input.actor, reason: input.reason, filter: input.filter, ...result, remaining },
        'filtered replay of dead orders',
      );
      return { dryRun: false, ...result, remaining };
    },

    reprocessMany,
  };
}
