import type { Queue } from 'bullmq';
import { PROCESS_ORDER_JOB, withTimeout, type ProcessOrderJobData } from '#common';

export type OrderQueue = ReturnType<typeof createOrderQueue>;

/** What the dead-letter views show of a failed job (never a full stack trace). */
export interface DeadJobInfo {
  readonly id: string;
  readonly state: string;
  readonly failedReason: string | null;
  readonly attemptsMade: number;
  readonly finishedOn: number | null;
  /** The top frame of the last stack trace, e.g. `at attempt (file.js:10:5)`; null when none. */
  readonly lastFrame: string | null;
}

/** The first `at …` line of a stack trace, with absolute paths cut to the file name. */
export function lastFrame(stacktrace: readonly string[] | undefined): string | null {
  const last = stacktrace?.at(-1);
  const frame = last
    ?.split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith('at '));
  return frame ? frame.replace(/\(?(?:file:\/\/)?\/[^():]*\/([^/():]+:\d+:\d+)\)?/, '($1)') : null;
}

/**
 * The api's side of the `orders` queue. The job id is the order id, so adding the job of an order
 * twice leaves one job. `timeoutMs` bounds each call even while the connection is still opening.
 */
export function createOrderQueue({
  queue,
  timeoutMs,
}: {
  readonly queue: Queue<ProcessOrderJobData>;
  readonly timeoutMs: number;
}) {
  const bounded = <T>(promise: Promise<T>) =>
    withTimeout(promise, timeoutMs, `Redis did not answer within ${timeoutMs} ms`);
  return {
    async enqueue(orderId: string, correlationId: string): Promise<void> {
      await bounded(queue.add(PROCESS_ORDER_JOB, { orderId, correlationId }, { jobId: orderId }));
    },

    async deadJob(orderId: string): Promise<DeadJobInfo | null> {
      const job = await bounded(queue.getJob(orderId));
      if (!job) return null;
      const state = await bounded(job.getState());
      return {
        id: job.id ?? orderId,
        state,
        failedReason: job.failedReason ?? null,
        attemptsMade: job.attemptsMade,
        finishedOn: job.finishedOn ?? null,
        lastFrame: lastFrame(job.stacktrace ?? undefined),
      };
    },

    /**
     * Brings a dead order's job back as a fresh series of attempts: a failed job is retried with its
     * attempt counters reset; a job cleaned from Redis (or left completed) is added anew; a job already
     * waiting, delayed or active is left alone. Returns what it did.
     */
    async revive(orderId: string, correlationId: string): Promise<'retried' | 'added' | 'already_queued'> {
      const job = await bounded(queue.getJob(orderId));
      if (job) {
        const state = await bounded(job.getState());
        if (state === 'failed') {
          await bounded(job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }));
          return 'retried';
        }
        if (state !== 'completed' && state !== 'unknown') return 'already_queued';
        await bounded(job.remove());
      }
      await bounded(queue.add(PROCESS_ORDER_JOB, { orderId, correlationId }, { jobId: orderId }));
      return 'added';
    },
  };
}
