import Joi from 'joi';
import { REPROCESS_MAX_IDS } from '../services/dlq-service.js';

const ORDER_ID = Joi.string().pattern(/^ord_[0-9a-f]{32}$/);
// An audit note: one line of text, no control characters (it lands in history and in log lines).
const reasonSchema = Joi.string()
  .max(200)
  .pattern(/^[^\x00-\x1f]*$/);

/** POST /dlq/:orderId/reprocess body (optional). The OpenAPI document is generated from it. */
export const reprocessOneSchema = Joi.object({ reason: reasonSchema });

/** POST /dlq/reprocess body (optional): no `orderIds` means every dead order. */
export const reprocessManySchema = Joi.object({
  orderIds: Joi.array().items(ORDER_ID).min(1).max(REPROCESS_MAX_IDS).unique(),
  reason: reasonSchema,
});

/** GET /dlq query. Query values are strings, so numbers are converted (and only here). */
export const dlqListQuerySchema = Joi.object({
  limit: Joi.number().integer().min(1).max(100).default(20),
  cursor: Joi.string().pattern(/^[A-Za-z0-9_-]{1,200}$/),
});
