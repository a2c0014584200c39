import Joi from 'joi';
import { REPROCESS_MAX_IDS } from '../services/dlq-service.js';
import { cursorSchema, orderIdSchema } from './order-schemas.js';

// An audit note: one line of text, no control characters (it lands in history and in log lines).
const reasonSchema = Joi.string()
  .max(200)
  .pattern(/^[^\x00-\x1f]*$/);

/** POST /dlq/:orderId/reprocess body (optional). The OpenAPI document is generated from it. */
export const reprocessOneSchema = Joi.object({ reason: reasonSchema });

/** POST /dlq/reprocess body (optional): no `orderIds` means every dead order. */
export const reprocessManySchema = Joi.object({
  orderIds: Joi.array().items(orderIdSchema).min(1).max(REPROCESS_MAX_IDS).unique(),
  reason: reasonSchema,
});

/** GET /dlq query. Query values are strings, so numbers are converted (and only here). */
export const dlqListQuerySchema = Joi.object({
  limit: Joi.number().integer().min(1).max(100).default(20),
  cursor: cursorSchema,
});
