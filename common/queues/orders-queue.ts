import { Queue, type JobsOptions, type ConnectionOptions } from 'bullmq';
import type { Order } from '../domain/order.js';
import { scheduleDelayMs, type OrderPriority } from '../domain/scheduling.js';

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
   * The order's customer: the worker's fair share (README, "Fairness") counts slots by it without a
   * read of the order. Absent on jobs added before it existed; those run without a slot.
   */
  readonly customerId?: string;
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

/**
 * Where each priority class enters the queue. BullMQ serves its wait list before its prioritized set,
 * so `standard` stays in the wait list as plain FIFO (O(1), the state dashboards and checks know as
 * `waiting`), `express` goes to the head of that list (`lifo`: it overtakes the whole standard backlog;
 * express orders among themselves run newest first) and `bulk` gets a BullMQ priority, so it runs only
 * while no standard or express job waits. A job that comes back from the delayed set (a schedule that
 * is due, a fair-share deferral) joins the tail of its list: an express one then queues as standard.
 */
export const JOB_PLACEMENT: Readonly<Record<OrderPriority, { readonly lifo?: true; readonly priority?: number }>> = {
  express: { lifo: true },
  standard: {},
  bulk: { priority: 1 },
};

/** An order's `process-order` job as `Queue.add`/`addBulk` take it. */
export interface OrderJob {
  readonly name: typeof PROCESS_ORDER_JOB;
  readonly data: ProcessOrderJobData;
  readonly opts: { readonly jobId: string; readonly lifo?: true; readonly priority?: number; readonly delay?: number };
}

/**
 * The one derivation of an order's job (the api's enqueue, the reconciler's re-add, a dead order's
 * revive): the job id is the order id (one job per order), its place its class, the delay what
 * is left of its schedule at `now`, so a job added again keeps its priority and its schedule.
 */
export function orderJob(
  order: Pick<Order, 'id' | 'correlationId' | 'customerId' | 'priority' | 'notBefore'>,
  options: {
    readonly now: Date;
    readonly trace?: Readonly<Record<string, string>>;
    /** Past its customer's burst limit (see burst-meter.ts): queued as bulk, behind others' orders. */
    readonly overBurst?: boolean;
  },
): OrderJob {
  const delay = scheduleDelayMs(order.notBefore, options.now);
  const placement = options.overBurst ? JOB_PLACEMENT.bulk : JOB_PLACEMENT[order.priority];
  return {
    name: PROCESS_ORDER_JOB,
    data: {
      orderId: order.id,
      correlationId: order.correlationId,
      customerId: order.customerId,
      ...(options.trace && { trace: options.trace }),
    },
    opts: { jobId: order.id, ...placement, ...(delay > 0 && { delay }) },
  };
}
