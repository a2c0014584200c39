import Joi from 'joi';
import { REPROCESS_MAX_IDS } from '../services/dlq-service.js';
import { cursorSchema, orderIdSchema } from './order-schemas.js';

// An audit note: one line of text, no control characters (it lands in history and in log lines).
const reasonSchema = Joi.string()
  .max(200)
  .pattern(/^[^\x00-\x1f]*$/);

/** Which dead-letter queue a /dlq route works on: the dead orders (default) or the undeliverable webhooks. */
export const DLQ_QUEUES = ['orders', 'notifications'] as const;
export type DlqQueue = (typeof DLQ_QUEUES)[number];
const queueSchema = Joi.string()
  .valid(...DLQ_QUEUES)
  .default('orders');

/** POST /dlq/:orderId/reprocess query: `queue=notifications` makes the id a notification job id. */
export const reprocessOneQuerySchema = Joi.object({ queue: queueSchema });

/** POST /dlq/:orderId/reprocess body (optional). The OpenAPI document is generated from it. */
export const reprocessOneSchema = Joi.object({ reason: reasonSchema });

/**
 * POST /dlq/reprocess body (optional): no `orderIds` means every dead order. `queue: "notifications"`
 * replays every failed webhook delivery instead (it takes no `orderIds`).
 */
export const reprocessManySchema = Joi.object({
  queue: queueSchema,
  orderIds: Joi.array().items(orderIdSchema).min(1).max(REPROCESS_MAX_IDS).unique(),
  reason: reasonSchema,
});

/**
 * GET /dlq query. Query values are strings, so numbers are converted (and only here). With
 * `queue=notifications` the page is the newest `limit` failed deliveries (no cursor).
 */
export const dlqListQuerySchema = Joi.object({
  queue: queueSchema,
  limit: Joi.number().integer().min(1).max(100).default(20),
  cursor: cursorSchema,
});
