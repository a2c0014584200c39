import Joi from 'joi';
import { OPERATOR_NAME_PATTERN } from '#common';
import { REPROCESS_BATCH, REPROCESS_MAX_IDS } from '../services/dlq-service.js';
import { cursorSchema, customerIdSchema, orderIdSchema } from './order-schemas.js';

// An audit note: one line of text, no control characters (it lands in history and in log lines).
export const reasonSchema = Joi.string()
  .max(200)
  .pattern(/^[^\x00-\x1f]*$/);

/** Which dead-letter queue a /dlq route works on: the dead orders (default) or the undeliverable webhooks. */
export const DLQ_QUEUES = ['orders', 'notifications'] as const;
export type DlqQueue = (typeof DLQ_QUEUES)[number];
const queueSchema = Joi.string()
  .valid(...DLQ_QUEUES)
  .default('orders');

/** The operator a replay is recorded under (history `by`, log lines); default: the API client's id. */
export const operatorSchema = Joi.string().pattern(OPERATOR_NAME_PATTERN);

/** POST /dlq/:orderId/reprocess query: `queue=notifications` makes the id a notification job id. */
export const reprocessOneQuerySchema = Joi.object({ queue: queueSchema });

/** POST /dlq/:orderId/reprocess body (optional). The OpenAPI document is generated from it. */
export const reprocessOneSchema = Joi.object({ reason: reasonSchema, operator: operatorSchema });

/** The fields that make POST /dlq/reprocess a filtered, bounded replay. */
export const REPLAY_FILTER_FIELDS = [
  'customerId',
  'failedReason',
  'failedFrom',
  'failedTo',
  'dryRun',
  'limit',
] as const;

/**
 * POST /dlq/reprocess body (optional): no `orderIds` means every dead order. `queue: "notifications"`
 * replays every failed webhook delivery instead (it takes no `orderIds`). Any filter, `dryRun` or
 * `limit` makes it a filtered replay: at most `limit` matches per request (`remaining` in the answer),
 * or with `dryRun` a count and a sample, nothing changed.
 */
export const reprocessManySchema = Joi.object({
  queue: queueSchema,
  orderIds: Joi.array().items(orderIdSchema).min(1).max(REPROCESS_MAX_IDS).unique(),
  reason: reasonSchema,
  operator: operatorSchema,
  customerId: customerIdSchema,
  failedReason: Joi.string()
    .min(1)
    .max(200)
    .pattern(/^[^\x00-\x1f]*$/)
    .description('a case-insensitive substring of the failure reason, e.g. an error code like ETIMEDOUT'),
  failedFrom: Joi.string().max(40).isoDate().description('failed at or after this time (ISO 8601)'),
  failedTo: Joi.string().max(40).isoDate().description('failed before this time (ISO 8601)'),
  dryRun: Joi.boolean().description('count (and sample) what would be replayed; change nothing'),
  limit: Joi.number()
    .integer()
    .min(1)
    .max(REPROCESS_MAX_IDS)
    .description(`the most replayed by one filtered request (default ${REPROCESS_BATCH})`),
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
