import { Queue, type JobsOptions, type ConnectionOptions } from 'bullmq';

/** Queue and job names are public: dashboards, scripts and alerts rely on them (docs/design.md, "Queue"). */
export const ORDERS_QUEUE = 'orders';
export const PROCESS_ORDER_JOB = 'process-order';

/**
 * The reconciler's own queue: one job scheduler (`reconcile-orders`) ticks every
 * RECONCILE_INTERVAL_MS, so exactly one worker runs each tick. Kept apart from `orders` so its jobs
 * never count as order backlog or dead letters.
 */
export const RECONCILE_QUEUE = 'orders-reconcile';
export const RECONCILE_SCHEDULER_ID = 'reconcile-orders';
export const RECONCILE_JOB = 'reconcile';

/** The data of a `process-order` job. */
export interface ProcessOrderJobData {
  readonly orderId: string;
  readonly correlationId: string;
  /**
   * W3C trace context (`traceparent`, `tracestate`) of the span that added the job, so the worker's
   * span continues the api's trace. Absent when tracing is off or the job was added outside a trace.
   */
  readonly trace?: Readonly<Record<string, string>>;
  /**
   * Set by the api when an operator retries the dead job from Bull Board: who, and when (epoch ms).
   * The worker names that operator in the history entry of the claim that revives the dead order,
   * if the retry came after the order's last failure (an older mark is ignored).
   */
  readonly retriedBy?: BoardRetryMark;
}

/** Who retried a dead job from the dashboard, and when (epoch milliseconds). */
export interface BoardRetryMark {
  readonly by: string;
  readonly at: number;
}

export interface JobPolicy {
  readonly jobAttempts: number;
  readonly jobBackoffMs: number;
}

/**
 * Default job options: `attempts` tries with exponential back-off (with jitter, so a burst of
 * failures does not retry in lock-step); completed jobs kept 1 h / 1000; failed jobs kept: the
 * failed set is the dead-letter queue.
 */
export function orderJobOptions(policy: JobPolicy): JobsOptions {
  return {
    attempts: policy.jobAttempts,
    backoff: { type: 'exponential', delay: policy.jobBackoffMs, jitter: 0.5 },
    removeOnComplete: { age: 3600, count: 1000 },
    removeOnFail: false,
  };
}

/** The `orders` queue for producers (api, health, scripts). The caller owns and closes the connection. */
export function createOrdersQueue(
  connection: ConnectionOptions,
  options: JobPolicy & { readonly prefix: string },
): Queue<ProcessOrderJobData> {
  return new Queue<ProcessOrderJobData>(ORDERS_QUEUE, {
    connection,
    prefix: options.prefix,
    defaultJobOptions: orderJobOptions(options),
  });
}
