import DataLoader from 'dataloader';
import type { Logger } from '#common';

export type EnqueueMarks = ReturnType<typeof createEnqueueMarks>;

/**
 * How long a mark waits for others to share its command. 100 ms was tried (a command for dozens of
 * marks at a few hundred orders a second instead of two or three) and dropped: at 50 connections the
 * stand-in's longer mark commands held intake back (0.78× and 0.72× bare against 0.80× and 0.97×,
 * alternated quick runs).
 */
const MARK_WINDOW_MS = 10;

/**
 * Write-behind for the outbox's last step (docs/design.md: insert with `enqueuedAt: null`, add the job,
 * then set `enqueuedAt`). The mark only tells the reconciler that the job reached Redis, so the
 * request need not wait for it: marks made within `windowMs` of each other go to MongoDB as one
 * `updateMany` (DataLoader batches them, at most `maxBatch` ids per command). A mark that never lands
 * (MongoDB away, the process killed) leaves the order exactly as a crash after the job was added
 * would: PENDING with `enqueuedAt: null`, which the reconciler re-adds under the same job id after its
 * grace period, a no-op for a job BullMQ still holds.
 */
export function createEnqueueMarks(deps: {
  /** One command that marks all these orders enqueued. */
  readonly write: (ids: readonly string[], at: Date) => Promise<void>;
  readonly logger: Logger;
  readonly windowMs?: number;
  readonly maxBatch?: number;
  readonly now?: () => Date;
}) {
  const { write, logger, windowMs = MARK_WINDOW_MS, maxBatch = 500 } = deps;
  const now = deps.now ?? (() => new Date());
  const inFlight = new Set<Promise<void>>();
  const loader = new DataLoader<string, true>(
    async (ids) => {
      try {
        await write(ids, now());
      } catch (err) {
        logger.warn(
          { err, orders: ids.length, firstOrderId: ids[0] },
          'could not record that these orders were queued; the reconciler will check their jobs',
        );
      }
      return ids.map(() => true as const);
    },
    { cache: false, maxBatchSize: maxBatch, batchScheduleFn: (run) => setTimeout(run, windowMs) },
  );

  return {
    /** Queues the mark and returns at once; never throws (a failed batch is logged once). */
    record(orderId: string): void {
      const done = loader.load(orderId).then(() => undefined);
      inFlight.add(done);
      void done.finally(() => inFlight.delete(done));
    },

    /** Resolves once every mark recorded so far was written (or failed and was logged). For shutdown. */
    async drain(): Promise<void> {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
