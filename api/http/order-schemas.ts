import Joi from 'joi';
import {
  AppError,
  ORDER_ID_PATTERN,
  ORDER_PRIORITIES,
  ORDER_STATUSES,
  notBeforeProblem,
  type ErrorDetail,
  type NewOrderInput,
} from '#common';

const CUSTOMER_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SKU = /^[A-Za-z0-9_.-]{1,64}$/;
const CURRENCY = /^[A-Z]{3}$/;
// Metadata keys: no `$` first, no `.` anywhere (MongoDB operator and path syntax), no control characters,
// and not `__proto__` (the JSON body parser refuses it before joi runs, and joi would drop it unseen: the
// pattern says so for the OpenAPI document generated from this schema).
const METADATA_KEY = /^(?!\$)(?!__proto__$)[^.\x00-\x1f]{1,40}$/;
// A surrogate half without its partner: valid in JSON text (`"\ud800"`), but not in UTF-8, so MongoDB
// would store U+FFFD instead — the stored order would differ from the one answered, and two such
// metadata keys would collapse into one. Matching it needs no repetition, so any length is cheap.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const WELL_FORMED = { name: 'well-formed Unicode', invert: true } as const;

/** POST /orders body (docs/design.md, "Orders"): strict types, unknown fields rejected, not stripped. */
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
  currency: Joi.string().pattern(CURRENCY).required(),
  metadata: Joi.object()
    .max(20)
    .pattern(
      Joi.string().pattern(METADATA_KEY).pattern(LONE_SURROGATE, WELL_FORMED),
      Joi.string().allow('').max(256).pattern(LONE_SURROGATE, WELL_FORMED),
    )
    .unknown(false),
  priority: Joi.string()
    .valid(...ORDER_PRIORITIES)
    .description('express overtakes standard, standard overtakes bulk; default standard'),
  notBefore: Joi.string()
    .isoDate()
    .max(64)
    .custom((value: string, helpers) => {
      const problem = notBeforeProblem(new Date(value), new Date());
      return problem ? helpers.message({ custom: `{{#label}} ${problem}` }) : value;
    })
    .description(
      'process no earlier than this ISO 8601 date-time: at most 60 s in the past, at most 30 days ahead; the order stays PENDING with scheduledFor set until then',
    ),
});

const ORDER_KEYS = new Set(['customerId', 'items', 'currency', 'metadata']);
const ITEM_KEYS = new Set(['sku', 'quantity', 'unitPriceCents']);
// Keys the fast path leaves to joi, whatever they hold: anything odd is joi's to judge.
const ODD_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
// -0 is left to joi, which stores it as 0.
const isIntegerIn = (v: unknown, min: number, max: number): boolean =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max && !Object.is(v, -0);
const matches = (v: unknown, pattern: RegExp): boolean => typeof v === 'string' && pattern.test(v);

function hasOnly(value: Record<string, unknown>, allowed: ReadonlySet<string>, required: readonly string[]): boolean {
  for (const key of Object.keys(value)) if (!allowed.has(key)) return false;
  for (const key of required) if (value[key] === undefined) return false;
  return true;
}

/**
 * The common case, checked without joi: true only for a body that {@link newOrderSchema} accepts
 * unchanged (the same rules, written out). It never rejects anything: a false sends the body to joi,
 * which decides and words the errors. joi interprets its schema on every call, which cost POST /orders
 * about a tenth of its CPU; `test/unit/order-fast-path.test.ts` checks with generated bodies that this
 * never accepts what joi refuses. Change both together.
 */
export function isPlainValidOrder(body: unknown): body is NewOrderInput {
  if (!isPlainObject(body) || !hasOnly(body, ORDER_KEYS, ['customerId', 'items', 'currency'])) return false;
  if (!matches(body.customerId, CUSTOMER_ID) || !matches(body.currency, CURRENCY)) return false;
  const { items, metadata } = body;
  if (!Array.isArray(items) || items.length < 1 || items.length > 100) return false;
  for (const item of items) {
    if (!isPlainObject(item) || !hasOnly(item, ITEM_KEYS, ['sku', 'quantity', 'unitPriceCents'])) return false;
    if (!matches(item.sku, SKU) || !isIntegerIn(item.quantity, 1, 10_000)) return false;
    if (!isIntegerIn(item.unitPriceCents, 0, 100_000_000)) return false;
  }
  if (metadata === undefined) return !Object.prototype.hasOwnProperty.call(body, 'metadata');
  if (!isPlainObject(metadata)) return false;
  const keys = Object.keys(metadata);
  if (keys.length > 20) return false;
  for (const key of keys) {
    if (ODD_KEYS.has(key) || !METADATA_KEY.test(key) || LONE_SURROGATE.test(key)) return false;
    const value = metadata[key];
    if (typeof value !== 'string' || value.length > 256 || LONE_SURROGATE.test(value)) return false;
  }
  return true;
}

/** POST /orders body: the fast path for the common case, joi for everything else (and every error). */
export function validateNewOrder(body: unknown): NewOrderInput {
  return isPlainValidOrder(body) ? body : validate<NewOrderInput>(newOrderSchema, body, { convert: false });
}

/** A page cursor as the listings hand it out (`nextCursor`): opaque base64url text. */
export const cursorSchema = Joi.string().pattern(/^[A-Za-z0-9_-]{1,200}$/);

/** An order id: `ord_` and 32 hex digits (the path parameters, `orderIds` of a bulk reprocess). */
export const orderIdSchema = Joi.string().pattern(ORDER_ID_PATTERN);

/** A customer id (1–64 of `[A-Za-z0-9_-]`), as a filter. */
export const customerIdSchema = Joi.string().pattern(CUSTOMER_ID);

/** GET /orders query. Query values are strings, so numbers are converted here (and only here). */
export const listOrdersQuerySchema = Joi.object({
  status: Joi.string().valid(...ORDER_STATUSES),
  customerId: customerIdSchema,
  limit: Joi.number().integer().min(1).max(100).default(20),
  cursor: cursorSchema,
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
