import Joi from 'joi';
import { AppError, ORDER_STATUSES, type ErrorDetail } from '#common';

const CUSTOMER_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SKU = /^[A-Za-z0-9_.-]{1,64}$/;
// Metadata keys: no `$` first, no `.` anywhere (MongoDB operator and path syntax), no control characters.
const METADATA_KEY = /^(?!\$)[^.\x00-\x1f]{1,40}$/;
// A surrogate half without its partner: valid in JSON text (`"\ud800"`), but not in UTF-8, so MongoDB
// would store U+FFFD instead — the stored order would differ from the one answered, and two such
// metadata keys would collapse into one. Matching it needs no repetition, so any length is cheap.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const WELL_FORMED = { name: 'well-formed Unicode', invert: true } as const;

/** POST /orders body (DESIGN.md, "Orders"): strict types, unknown fields rejected, not stripped. */
export const newOrderSchema = Joi.object({
  customerId: Joi.string().pattern(CUSTOMER_ID).required(),
  items: Joi.array()
    .min(1)
    .max(100)
    .required()
    .items(
      Joi.object({
        sku: Joi.string().pattern(SKU).required(),
        quantity: Joi.number().integer().min(1).max(10000).required(),
        unitPriceCents: Joi.number().integer().min(0).max(100_000_000).required(),
      }),
    ),
  currency: Joi.string()
    .pattern(/^[A-Z]{3}$/)
    .required(),
  metadata: Joi.object()
    .max(20)
    .pattern(
      Joi.string().pattern(METADATA_KEY).pattern(LONE_SURROGATE, WELL_FORMED),
      Joi.string().allow('').max(256).pattern(LONE_SURROGATE, WELL_FORMED),
    )
    .unknown(false),
});

const CURSOR = /^[A-Za-z0-9_-]{1,200}$/;

/** GET /orders query. Query values are strings, so numbers are converted here (and only here). */
export const listOrdersQuerySchema = Joi.object({
  status: Joi.string().valid(...ORDER_STATUSES),
  customerId: Joi.string().pattern(CUSTOMER_ID),
  limit: Joi.number().integer().min(1).max(100).default(20),
  cursor: Joi.string().pattern(CURSOR),
});

/**
 * Validates `value` against `schema` and returns the result, or throws a VALIDATION_ERROR whose
 * details name every offending field (`items.0.quantity`, `metadata.$where`, …).
 */
export function validate<T>(schema: Joi.Schema, value: unknown, options: { convert: boolean }): T {
  const result = schema.validate(value, {
    abortEarly: false,
    convert: options.convert,
    errors: { wrap: { label: false } },
  });
  if (result.error) {
    const details: ErrorDetail[] = result.error.details.map((d) => ({
      field: d.path.length > 0 ? d.path.join('.') : (d.context?.key ?? 'body'),
      message: d.message,
    }));
    throw new AppError('VALIDATION_ERROR', 'the request is not valid', { details });
  }
  return result.value as T;
}
