import type { Queue } from 'bullmq';
import {
  addJobs,
  injectTraceContext,
  isRedisUnavailable,
  orderJob,
  withTimeout,
  type OrderJob,
  type BurstMeter,
  type Order,
  type ProcessOrderJobData,
} from '#common';

/** What the api's jobs need of an order (see `orderJob`). */
export type JobOrder = Pick<Order, 'id' | 'correlationId' | 'customerId' | 'priority' | 'notBefore'>;

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

/**
 * An order's job as a request asks for it: built when it is added (placed by its class and its
 * customer's burst, see `orderJob`), with the trace context of the request that asked, so the
 * worker's span continues that request's trace even when its job is added in another's batch.
 */
export interface JobRequest {
  readonly order: JobOrder;
  readonly trace?: Readonly<Record<string, string>>;
}

/** The job request of an order; call it in the request's context (its trace context is taken now). */
export function jobRequest(order: JobOrder): JobRequest {
  const trace = injectTraceContext();
  return { order, ...(trace && { trace }) };
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
  burst,
}: {
  readonly queue: Queue<ProcessOrderJobData>;
  readonly timeoutMs: number;
  /** The fair share's burst meter; absent with FAIR_SHARE_KEY=off (every order placed by its class). */
  readonly burst?: BurstMeter;
}) {
  const bounded = boundedQueueCall(timeoutMs);

  /** The jobs of these requests: one pipelined burst check for all their customers, then `orderJob` each. */
  async function jobsOf(requests: readonly JobRequest[]): Promise<OrderJob[]> {
    const overBurst = burst ? await bounded(burst.overLimit(requests.map((r) => r.order.customerId))) : [];
    const now = new Date();
    return requests.map((r, i) => orderJob(r.order, { now, trace: r.trace, overBurst: overBurst[i] === true }));
  }

  return {
    async enqueue(order: JobOrder): Promise<void> {
      const [job] = await jobsOf([jobRequest(order)]);
      await bounded(queue.add(job.name, job.data, job.opts));
    },

    /** Adds these jobs in one round trip (group commit at intake; see `addJobs`); all are added or the call throws. */
    async enqueueMany(requests: readonly JobRequest[]): Promise<void> {
      await bounded(addJobs(queue, await jobsOf(requests)));
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
    async revive(order: JobOrder): Promise<'retried' | 'added' | 'already_queued'> {
      const orderId = order.id;
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
      // Added anew as the api adds it: same priority, and what is left of its schedule.
      const { name, data, opts } = orderJob(order, { now: new Date() });
      await bounded(queue.add(name, data, opts));
      return 'added';
    },
  };
}
