import type { Middleware } from 'koa';
import { AppError, type CheckResult } from '#common';

/** One probe's verdict and the body that describes it. */
export interface ProbeAnswer {
  readonly ok: boolean;
  readonly body: Record<string, unknown>;
}

export type Probe = () => Promise<ProbeAnswer>;

const PROBE_METHODS = 'GET, HEAD';

/**
 * The api's probes, served by the app itself so they carry `X-Request-Id` like every response. Each
 * request runs its own check and gets a fresh body describing only that check (terminus merged every
 * check's result into one shared object, so `/health/live` showed `/health/ready`'s stale MongoDB
 * state). Only GET and HEAD: anything else is 405 with `Allow`. Never cached.
 */
export function createProbes(probes: Readonly<Record<string, Probe>>): Middleware {
  return async (ctx, next) => {
    const probe = Object.hasOwn(probes, ctx.path) ? probes[ctx.path] : undefined;
    if (!probe) return next();
    // Metrics and access lines label the probe by its path (it is not a router route).
    (ctx as { _matchedRoute?: string })._matchedRoute = ctx.path;
    ctx.set('Cache-Control', 'no-store');
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', PROBE_METHODS);
      throw new AppError('METHOD_NOT_ALLOWED', `${ctx.path} answers GET and HEAD only`);
    }
    const answer = await probe();
    ctx.status = answer.ok ? 200 : 503;
    ctx.body = answer.body;
  };
}

/** A failed probe's body, in the shape terminus used (`error` and `details` name what is down). */
export function failedProbe(failing: Record<string, CheckResult>): ProbeAnswer {
  return { ok: false, body: { status: 'error', error: failing, details: failing } };
}

/**
 * The api's two probes. Liveness is the process only; readiness is MongoDB (the api serves while
 * Redis is away: it answers 202 and the reconciler enqueues later), and turns 503 once the api
 * drains for shutdown, so load balancers stop sending it traffic.
 */
export function createApiProbes(deps: {
  readonly mongodb: () => Promise<CheckResult>;
  readonly draining: () => boolean;
}): Record<'/health/live' | '/health/ready', Probe> {
  return {
    '/health/live': async () => ({ ok: true, body: { status: 'ok', uptimeSeconds: Math.round(process.uptime()) } }),
    '/health/ready': async () => {
      if (deps.draining()) return { ok: false, body: { status: 'error', error: { shutdown: 'draining' } } };
      const mongodb = await deps.mongodb();
      return mongodb.status === 'up' ? { ok: true, body: { status: 'ok', mongodb } } : failedProbe({ mongodb });
    },
  };
}
