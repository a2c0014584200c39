import type { JobsOptions, Queue } from 'bullmq';
import {
  PROCESS_ORDER_JOB,
  injectTraceContext,
  isRedisUnavailable,
  withTimeout,
  type Order,
  type ProcessOrderJobData,
} from '#common';

export type OrderJobs = ReturnType<typeof createOrderJobs>;

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

/** Redis did not take a command: away, or slower than the api's bound. Worth a retry later. */
export class QueueUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QueueUnavailableError';
  }
}

/**
 * Wraps a queue call so it answers within `timeoutMs`: Redis away (or too slow) becomes a
 * {@link QueueUnavailableError}, which the services turn into a fast 202 or 503.
 */
export function boundedQueueCall(timeoutMs: number): <T>(promise: Promise<T>) => Promise<T> {
  const timeoutMessage = `Redis did not answer within ${timeoutMs} ms`;
  return async (promise) => {
    try {
      return await withTimeout(promise, timeoutMs, timeoutMessage);
    } catch (err) {
      if (isRedisUnavailable(err) || (err instanceof Error && err.message === timeoutMessage)) {
        throw new QueueUnavailableError((err as Error).message, { cause: err });
      }
      throw err;
    }
  };
}

/** One `process-order` job as BullMQ's `add`/`addBulk` take it. */
export interface OrderJob {
  readonly name: typeof PROCESS_ORDER_JOB;
  readonly data: ProcessOrderJobData;
  readonly opts: JobsOptions & { readonly jobId: string };
}

/**
 * The job of an order: the one place that maps an order to its job's name, data and options (the
 * queue's defaults add the retry policy). The job id is the order id. Call it in the request's
 * context: the active trace context rides along, so the worker's span continues the request's trace.
 */
export function orderJob(order: Pick<Order, 'id' | 'correlationId'>): OrderJob {
  const trace = injectTraceContext();
  return {
    name: PROCESS_ORDER_JOB,
    data: { orderId: order.id, correlationId: order.correlationId, ...(trace && { trace }) },
    opts: { jobId: order.id },
  };
}

/** A job in one of these states will run (again) without anyone's help. */
function isQueued(state: string): boolean {
  return state !== 'failed' && state !== 'completed' && state !== 'unknown';
}

/**
 * The api's side of the `orders` queue's jobs: add one, read a dead one, revive one. The job id is the order id, so adding the job of an order
 * twice leaves one job. `timeoutMs` bounds each call even while the connection is still opening.
 */
export function createOrderJobs({
  queue,
  timeoutMs,
}: {
  readonly queue: Queue<ProcessOrderJobData>;
  readonly timeoutMs: number;
}) {
  const bounded = boundedQueueCall(timeoutMs);
  return {
    async enqueue(order: Pick<Order, 'id' | 'correlationId'>): Promise<void> {
      const job = orderJob(order);
      await bounded(queue.add(job.name, job.data, job.opts));
    },

    /** Adds these jobs in one round trip (group commit at intake); all are added or the call throws. */
    async enqueueMany(jobs: readonly OrderJob[]): Promise<void> {
      await bounded(queue.addBulk(jobs as OrderJob[]));
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
        // Another caller (a concurrent reprocess, the board, the reconciler) may move the job between
        // our read and our write, and BullMQ then refuses the write. A job queued by now is the
        // outcome we wanted, not an error.
        const queuedMeanwhile = async (err: unknown): Promise<'already_queued'> => {
          if (isQueued(await bounded(job.getState()))) return 'already_queued';
          throw err;
        };
        const state = await bounded(job.getState());
        if (state === 'failed') {
          try {
            await bounded(job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }));
          } catch (err) {
            return queuedMeanwhile(err);
          }
          return 'retried';
        }
        if (isQueued(state)) return 'already_queued';
        try {
          await bounded(job.remove());
        } catch (err) {
          // Already removed by the other caller: add it below, as it does (same job id, one job).
          if ((await bounded(job.getState())) !== 'unknown') return queuedMeanwhile(err);
        }
      }
      const fresh = orderJob({ id: orderId, correlationId });
      await bounded(queue.add(fresh.name, fresh.data, fresh.opts));
      return 'added';
    },
  };
}
