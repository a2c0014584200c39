/**
 * The payment sandbox (docs/design.md, "Payment provider API"): an in-memory stand-in for a card processor
 * that the HTTP payment provider speaks to in development, in the tests and in the fault battery.
 * A development and test tool, not one of the product's processes. `buildSandboxApp` never listens.
 *
 * Provider API: `POST /charges`, `POST /charges/:id/refunds`, `GET /charges?orderId=`.
 * Control (never affected by the settings): `GET|PUT /_settings`, `GET /_stats`, `GET /_charges?orderId=`
 * (the listing of `GET /charges`, readable during an outage).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Router } from '@koa/router';
import Joi from 'joi';
import Koa, { type Context, type Middleware } from 'koa';
import { koaBody } from 'koa-body';
import type { Logger } from 'pino';
import { fingerprint } from '#common';
import { applySettingsPatch, drawLatency, SandboxSettingsError, type SandboxSettings } from './settings.js';

export interface SandboxCharge {
  readonly id: string;
  readonly orderId: string;
  readonly status: 'succeeded' | 'declined';
  readonly amountCents: number;
  readonly currency: string;
  /** The Idempotency-Key the charge was made under. */
  readonly idempotencyKey: string;
  readonly createdAt: string;
}

export interface SandboxRefund {
  readonly id: string;
  readonly chargeId: string;
  readonly amountCents: number;
  readonly createdAt: string;
}

/** What `GET /_stats` reports: every provider call received, and the effects made. */
export interface SandboxStats {
  /** Provider calls that reached the sandbox (whatever they were answered), control routes excluded. */
  calls: number;
  /** Charges created (a replay creates none), declined ones included. */
  charges: number;
  refunds: number;
  /** Calls answered 500 by the failure rate. */
  failed: number;
  /** Calls answered 503 or dropped by an outage. */
  unavailable: number;
}

export interface SandboxOptions {
  readonly logger?: Logger;
  /** [0, 1) draws for the failure rate and latency ranges; Math.random unless a test fixes them. */
  readonly random?: () => number;
  /** Aborts the delays of calls in flight (shutdown), so the process need not wait for a slow answer. */
  readonly signal?: AbortSignal;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const chargeSchema = Joi.object({
  orderId: Joi.string().min(1).max(200).required(),
  amountCents: Joi.number().integer().min(0).max(Number.MAX_SAFE_INTEGER).required(),
  currency: Joi.string()
    .pattern(/^[A-Z]{3}$/)
    .required(),
  testCard: Joi.string().max(100),
}).unknown(false);
const refundSchema = Joi.object({
  amountCents: Joi.number().integer().min(1).max(Number.MAX_SAFE_INTEGER),
}).unknown(false);

class SandboxError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Builds the sandbox's Koa app over its own in-memory state, starting from `settings`. */
export function buildSandboxApp(settings: SandboxSettings, options: SandboxOptions = {}): Koa {
  const random = options.random ?? Math.random;
  const log = options.logger?.child({ module: 'payment-sandbox' });
  let current = settings;
  const stats: SandboxStats = { calls: 0, charges: 0, refunds: 0, failed: 0, unavailable: 0 };
  const charges = new Map<string, SandboxCharge>();
  // By order, so the unknown-outcome lookup stays cheap however many orders a long run has charged.
  const chargesByOrder = new Map<string, SandboxCharge[]>();
  const refundsByCharge = new Map<string, SandboxRefund[]>();
  // Idempotency keys, per route: the key, the fingerprint of what was asked under it, and the result.
  const chargeKeys = new Map<string, { readonly print: string; readonly chargeId: string }>();
  const refundKeys = new Map<string, { readonly print: string; readonly refund: SandboxRefund }>();

  const wait = (ms: number) => (ms > 0 ? sleep(ms, undefined, { signal: options.signal }) : Promise.resolve());

  const errors: Middleware = async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (err instanceof SandboxError) {
        ctx.status = err.status;
        ctx.body = { error: { code: err.code, message: err.message } };
        return;
      }
      const status = (err as { status?: number }).status;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        ctx.status = status;
        ctx.body = { error: { code: 'BAD_REQUEST', message: (err as Error).message } };
        return;
      }
      // Shutting down: the delays in flight were cut short on purpose.
      if (!options.signal?.aborted) log?.error({ err }, 'payment sandbox error');
      ctx.status = 500;
      ctx.body = { error: { code: 'INTERNAL_ERROR', message: 'internal error' } };
    }
  };

  // Latency, outage and the failure rate, in that order, before any effect; control routes skip it all.
  const weather: Middleware = async (ctx, next) => {
    stats.calls += 1;
    await wait(drawLatency(current.latencyMs, random));
    if (current.outage === 'reset') {
      stats.unavailable += 1;
      ctx.req.socket.destroy();
      ctx.respond = false;
      return;
    }
    if (current.outage === '503') {
      stats.unavailable += 1;
      throw new SandboxError(503, 'SERVICE_UNAVAILABLE', 'payment sandbox outage');
    }
    if (current.failureRate > 0 && random() < current.failureRate) {
      stats.failed += 1;
      throw new SandboxError(500, 'INTERNAL_ERROR', 'payment sandbox simulated failure');
    }
    await next();
  };

  // The effect is made before this waits, so a caller that gives up meanwhile leaves it behind.
  const answerLate = async () => wait(current.slowMs);

  const json = koaBody({ json: true, jsonStrict: true, urlencoded: false, text: false, multipart: false });
  const router = new Router();

  router.post('/charges', weather, json, async (ctx) => {
    const key = idempotencyKey(ctx);
    const body = validate<{ orderId: string; amountCents: number; currency: string; testCard?: string }>(
      chargeSchema,
      ctx.request.body,
    );
    const print = fingerprint(body);
    const seen = chargeKeys.get(key);
    if (seen) {
      if (seen.print !== print) throw keyReused(key);
      ctx.status = 200;
      ctx.set('Idempotent-Replayed', 'true');
      ctx.body = charges.get(seen.chargeId);
      return;
    }
    const charge: SandboxCharge = Object.freeze({
      id: `ch_${randomBytes(12).toString('hex')}`,
      orderId: body.orderId,
      status: body.testCard === 'declined' ? 'declined' : 'succeeded',
      amountCents: body.amountCents,
      currency: body.currency,
      // Listed with the charge, so a caller that lost the answer can find the charge it asked for by key.
      idempotencyKey: key,
      createdAt: new Date().toISOString(),
    });
    charges.set(charge.id, charge);
    chargesByOrder.set(charge.orderId, [...(chargesByOrder.get(charge.orderId) ?? []), charge]);
    chargeKeys.set(key, { print, chargeId: charge.id });
    stats.charges += 1;
    log?.info({ chargeId: charge.id, orderId: charge.orderId, status: charge.status }, 'charge made');
    await answerLate();
    ctx.status = 201;
    ctx.body = charge;
  });

  router.post('/charges/:id/refunds', weather, json, async (ctx) => {
    const key = idempotencyKey(ctx);
    const body = validate<{ amountCents?: number }>(refundSchema, ctx.request.body ?? {});
    const chargeId = ctx.params.id;
    const print = fingerprint({ chargeId, amountCents: body.amountCents ?? null });
    // Refund keys are scoped to the charge the route names: the same key on another charge of the
    // order (charged again after a refund) is a new refund.
    const scopedKey = `${chargeId}\n${key}`;
    const seen = refundKeys.get(scopedKey);
    if (seen) {
      if (seen.print !== print) throw keyReused(key);
      ctx.status = 200;
      ctx.set('Idempotent-Replayed', 'true');
      ctx.body = seen.refund;
      return;
    }
    const charge = charges.get(chargeId);
    if (!charge) throw new SandboxError(404, 'NOT_FOUND', `charge ${chargeId} not found`);
    if (charge.status !== 'succeeded') {
      throw new SandboxError(409, 'CHARGE_NOT_REFUNDABLE', `charge ${chargeId} was ${charge.status}`);
    }
    const refunds = refundsByCharge.get(chargeId) ?? [];
    const left = charge.amountCents - refunds.reduce((sum, r) => sum + r.amountCents, 0);
    const amountCents = body.amountCents ?? left;
    if (amountCents <= 0 || amountCents > left) {
      throw new SandboxError(409, 'REFUND_EXCEEDS_CHARGE', `charge ${chargeId} has ${left} cents left to refund`);
    }
    const refund: SandboxRefund = Object.freeze({
      id: `re_${randomBytes(12).toString('hex')}`,
      chargeId,
      amountCents,
      createdAt: new Date().toISOString(),
    });
    refundsByCharge.set(chargeId, [...refunds, refund]);
    refundKeys.set(scopedKey, { print, refund });
    stats.refunds += 1;
    log?.info({ refundId: refund.id, chargeId, amountCents }, 'refund made');
    await answerLate();
    ctx.status = 201;
    ctx.body = refund;
  });

  const listed = (orderId: string | undefined) =>
    (orderId === undefined ? [...charges.values()] : (chargesByOrder.get(orderId) ?? [])).map((c) => ({
      ...c,
      refunds: refundsByCharge.get(c.id) ?? [],
    }));
  const orderIdOf = (ctx: Context) => (typeof ctx.query.orderId === 'string' ? ctx.query.orderId : undefined);

  // Without orderId: every charge.
  router.get('/charges', weather, (ctx) => {
    ctx.body = { items: listed(orderIdOf(ctx)) };
  });
  // The same listing as a control route: tests and the fault battery count charges during an outage.
  router.get('/_charges', (ctx) => {
    ctx.body = { items: listed(orderIdOf(ctx)) };
  });

  router.get('/_settings', (ctx) => {
    ctx.body = current;
  });
  router.put('/_settings', json, (ctx) => {
    try {
      current = applySettingsPatch(current, ctx.request.body);
    } catch (err) {
      if (err instanceof SandboxSettingsError) throw new SandboxError(400, 'VALIDATION_FAILED', err.message);
      throw err;
    }
    log?.info({ settings: current }, 'payment sandbox settings changed');
    ctx.body = current;
  });
  router.get('/_stats', (ctx) => {
    ctx.body = stats;
  });

  const app = new Koa();
  app.use(errors);
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

function idempotencyKey(ctx: Context): string {
  const key = ctx.get('Idempotency-Key');
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new SandboxError(
      400,
      'IDEMPOTENCY_KEY_REQUIRED',
      'an Idempotency-Key header (1-255 visible characters) is required',
    );
  }
  return key;
}

function keyReused(key: string): SandboxError {
  return new SandboxError(422, 'IDEMPOTENCY_KEY_REUSED', `Idempotency-Key ${key} was used with another request`);
}

function validate<T>(schema: Joi.ObjectSchema, body: unknown): T {
  const { value, error } = schema.validate(body, { abortEarly: false, convert: false });
  if (error) throw new SandboxError(400, 'VALIDATION_FAILED', error.details.map((d) => d.message).join('; '));
  return value as T;
}
