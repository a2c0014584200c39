import Joi from 'joi';
import { PAUSABLE_QUEUES } from '../services/processing-service.js';
import { operatorSchema, reasonSchema } from './dlq-schemas.js';

/** POST /admin/processing/pause and /resume body (optional): which queue (default orders), who and why. */
export const processingChangeSchema = Joi.object({
  queue: Joi.string()
    .valid(...PAUSABLE_QUEUES)
    .default('orders'),
  operator: operatorSchema,
  reason: reasonSchema,
});

/** GET /admin/audit query: a page of the audit, newest first, optionally one operator's or one action's. */
export const auditQuerySchema = Joi.object({
  limit: Joi.number().integer().min(1).max(100).default(50),
  actor: operatorSchema,
  action: Joi.string()
    .pattern(/^[a-z]+(\.[a-z-]+)*$/)
    .max(64),
  cursor: Joi.string().pattern(/^[0-9a-f]{24}$/),
});
