import type { Job, Queue } from 'bullmq';
import type { OrderEvent } from '#common';
import { boundedQueueCall, QueueUnavailableError } from './order-jobs.js';

export type NotificationJobs = ReturnType<typeof createNotificationJobs>;

/**
 * Which failed deliveries a filtered replay takes (all fields optional, all must hold): the order's
 * customer, a failure reason (case-insensitive substring of the job's failed reason) and the time of
 * the last failure in [failedFrom, failedTo).
 */
export interface DeadNotificationFilter {
  readonly customerId?: string;
  readonly failedReason?: string;
  readonly failedFrom?: Date;
  readonly failedTo?: Date;
}

/** How many failed jobs one read of the failed set takes while a filter walks it. */
const SCAN_PAGE = 100;

function matches(filter: DeadNotificationFilter, job: Job<OrderEvent>): boolean {
  const finishedOn = job.finishedOn ?? 0;
  return (
    (!filter.customerId || job.data?.data?.customerId === filter.customerId) &&
    (!filter.failedReason || (job.failedReason ?? '').toLowerCase().includes(filter.failedReason.toLowerCase())) &&
    (!filter.failedFrom || finishedOn >= filter.failedFrom.getTime()) &&
    (!filter.failedTo || finishedOn < filter.failedTo.getTime())
  );
}

/** What the dead-letter view shows of an undeliverable event (never its stack trace or body). */
export interface DeadNotification {
  /** The job id, also the delivery's `webhook-id` (`<orderId>-<status>`). */
  readonly id: string;
  readonly type: string | null;
  readonly orderId: string | null;
  readonly failedReason: string | null;
  readonly attemptsMade: number;
  readonly finishedOn: number | null;
}

const toDead = (job: Job<OrderEvent>): DeadNotification => ({
  id: job.id ?? '',
  type: job.data?.type ?? null,
  orderId: job.data?.data?.id ?? null,
  failedReason: job.failedReason ?? null,
  attemptsMade: job.attemptsMade,
  finishedOn: job.finishedOn ?? null,
});

/**
 * The api's side of the `notifications` queue's failed set (its dead-letter queue): read a page of it,
 * retry one job or all of them with the attempt counters reset, so the same `webhook-id` is delivered
 * again. `timeoutMs` bounds each Redis call; Redis away (or too slow) is a {@link QueueUnavailableError}.
 */
export function createNotificationJobs({
  queue,
  timeoutMs,
}: {
  readonly queue: Queue<OrderEvent>;
  readonly timeoutMs: number;
}) {
  const bounded = boundedQueueCall(timeoutMs);

  /** Retries a job read as failed; a job moved meanwhile (another replay, the board) is not an error. */
  async function retryJob(job: Job<OrderEvent>): Promise<'retried' | 'not_failed'> {
    try {
      await bounded(job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }));
      return 'retried';
    } catch (err) {
      if (err instanceof QueueUnavailableError) throw err;
      if ((await bounded(job.getState())) !== 'failed') return 'not_failed';
      throw err;
    }
  }

  return {
    /** The newest `limit` failed events (latest failure first) and how many there are in all. */
    async listFailed(limit: number): Promise<{ items: DeadNotification[]; total: number }> {
      const [jobs, total] = await Promise.all([
        bounded(queue.getFailed(0, limit - 1)),
        bounded(queue.getFailedCount()),
      ]);
      return { items: jobs.filter((j): j is Job<OrderEvent> => Boolean(j)).map(toDead), total };
    },

    /** Retries one failed event; says what it found when the job is not failed (or not there). */
    async retry(id: string): Promise<{ outcome: 'retried' | 'not_failed' | 'not_found'; job?: DeadNotification }> {
      const job = await bounded(queue.getJob(id));
      if (!job) return { outcome: 'not_found' };
      const before = toDead(job);
      if ((await bounded(job.getState())) !== 'failed') return { outcome: 'not_failed', job: before };
      return { outcome: await retryJob(job), job: before };
    },

    /**
     * Walks the whole failed set (newest failure first, a page at a time; the set has no index by
     * customer or reason): how many failed events match `filter`, and the first `take` of them.
     */
    async scanFailed(
      filter: DeadNotificationFilter,
      take: number,
    ): Promise<{ matched: number; jobs: Job<OrderEvent>[] }> {
      const jobs: Job<OrderEvent>[] = [];
      let matched = 0;
      for (let start = 0; ; start += SCAN_PAGE) {
        const page = await bounded(queue.getFailed(start, start + SCAN_PAGE - 1));
        for (const job of page) {
          if (!job || !matches(filter, job)) continue;
          matched += 1;
          if (jobs.length < take) jobs.push(job);
        }
        if (page.length < SCAN_PAGE) break;
      }
      return { matched, jobs };
    },

    /** Retries the given failed jobs (read by {@link scanFailed}); a job moved meanwhile is skipped. */
    async retryJobs(jobs: readonly Job<OrderEvent>[]): Promise<{ retried: number; skipped: number }> {
      const outcomes = await Promise.all(jobs.map(retryJob));
      const retried = outcomes.filter((o) => o === 'retried').length;
      return { retried, skipped: outcomes.length - retried };
    },

    /**
     * Retries every failed event, `batch` at a time. Each batch leaves the failed set, so the first
     * page is always the next batch; a job seen twice (it failed again meanwhile) ends the walk.
     */
    async retryAll(batch: number): Promise<{ retried: number; skipped: number }> {
      const seen = new Set<string>();
      const result = { retried: 0, skipped: 0 };
      for (;;) {
        const jobs = (await bounded(queue.getFailed(0, batch - 1))).filter(
          (j): j is Job<OrderEvent> => Boolean(j?.id) && !seen.has(j.id ?? ''),
        );
        if (jobs.length === 0) return result;
        for (const j of jobs) seen.add(j.id ?? '');
        const outcomes = await Promise.all(jobs.map(retryJob));
        for (const o of outcomes) result[o === 'retried' ? 'retried' : 'skipped'] += 1;
      }
    },
  };
}
