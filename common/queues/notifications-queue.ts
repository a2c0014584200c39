import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { toOrderView, type Order, type OrderStatus, type OrderView } from '../domain/order.js';

/** The queue of order events to deliver to `WEBHOOK_URL`; its failed set holds the undeliverable ones. */
export const NOTIFICATIONS_QUEUE = 'notifications';
export const DELIVER_EVENT_JOB = 'deliver-event';

/** The order statuses that produce an event, and the event type of each. */
export const ORDER_EVENT_TYPES = {
  PROCESSED: 'order.processed',
  REJECTED: 'order.rejected',
  FAILED: 'order.failed',
  CANCELLED: 'order.cancelled',
} as const satisfies Partial<Record<OrderStatus, string>>;

export type EventfulStatus = keyof typeof ORDER_EVENT_TYPES;
export type OrderEventType = (typeof ORDER_EVENT_TYPES)[EventfulStatus];

/** The body of a webhook delivery, and the data of a `deliver-event` job. */
export interface OrderEvent {
  readonly type: OrderEventType;
  /** When the event was made (ISO 8601). */
  readonly timestamp: string;
  readonly data: OrderView;
}

export const isEventfulStatus = (status: OrderStatus): status is EventfulStatus => status in ORDER_EVENT_TYPES;

/**
 * The event's job id, also its `webhook-id`: one per order and status, so a repeated transition or a
 * retried step adds nothing (BullMQ ignores an id it holds) and a receiver can drop duplicates by it.
 * `-` joins: BullMQ refuses `:` in custom ids.
 */
export const orderEventId = (orderId: string, status: EventfulStatus): string => `${orderId}-${status.toLowerCase()}`;

/** The event for an order in an eventful status. */
export function buildOrderEvent(order: Order & { status: EventfulStatus }, at: Date = new Date()): OrderEvent {
  return { type: ORDER_EVENT_TYPES[order.status], timestamp: at.toISOString(), data: toOrderView(order) };
}

/** Retries of a failing delivery: exponential from `baseDelayMs`, doubling, each with up to 50 % jitter off. */
export interface WebhookRetrySchedule {
  /** Attempts in all (the first try and the retries). */
  readonly attempts: number;
  readonly baseDelayMs: number;
  /** The nominal wait before each retry (jitter takes up to half of each off). */
  readonly delaysMs: readonly number[];
}

/** Retries after the first try: twelve doublings, so the last wait is half the horizon (about 12 h for a day). */
export const WEBHOOK_RETRIES = 12;

/**
 * The retry schedule spread over `horizonMs`: 12 retries, doubling from `horizonMs / (2^12 − 1)`, so the
 * nominal waits add up to the horizon (with the jitter, 50–100 % of it). A day gives 21 s, 42 s, 84 s,
 * 2.8 min, 5.6 min, 11 min, 22 min, 45 min, 1.5 h, 3 h, 6 h, 12 h.
 */
export function webhookRetrySchedule(horizonMs: number): WebhookRetrySchedule {
  const baseDelayMs = Math.max(1, Math.round(horizonMs / (2 ** WEBHOOK_RETRIES - 1)));
  const delaysMs = Array.from({ length: WEBHOOK_RETRIES }, (_, i) => baseDelayMs * 2 ** i);
  return { attempts: WEBHOOK_RETRIES + 1, baseDelayMs, delaysMs };
}

/**
 * Job options of an event: the schedule above (BullMQ's exponential back-off with jitter), delivered
 * events kept a week / 10 000 (while kept, the same event is not added twice), undeliverable ones kept
 * until replayed or cleaned (the failed set is the notifications' dead-letter queue).
 */
export function notificationJobOptions(horizonMs: number): JobsOptions {
  const schedule = webhookRetrySchedule(horizonMs);
  return {
    attempts: schedule.attempts,
    backoff: { type: 'exponential', delay: schedule.baseDelayMs, jitter: 0.5 },
    removeOnComplete: { age: 7 * 86_400, count: 10_000 },
    removeOnFail: false,
  };
}

/** The `notifications` queue for producers and the board. The caller owns and closes the connection. */
export function createNotificationsQueue(
  connection: ConnectionOptions,
  options: { readonly prefix: string; readonly retryHorizonMs?: number },
): Queue<OrderEvent> {
  return new Queue<OrderEvent>(NOTIFICATIONS_QUEUE, {
    connection,
    prefix: options.prefix,
    defaultJobOptions: notificationJobOptions(options.retryHorizonMs ?? 86_400_000),
  });
}
