import type { RedisClient } from '#common';
import type { Context } from 'koa';
import { Counter, type Registry } from 'prom-client';
import {
  RLWrapperTimeouts,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import { AppError } from '#common';
import type { Client } from './auth.js';

/** A frozen Redis must not hold requests: past this the in-memory insurance limiter decides. */
export const LIMITER_REDIS_TIMEOUT_MS = 100;

/** Failed authentications are counted over this window, and a key over the limit is blocked this long. */
export const AUTH_FAILURE_WINDOW_SECONDS = 15 * 60;
import type { AppMiddleware } from './app-state.js';

const OPEN_PATHS = /^\/(health\/(live|ready)|metrics)$/;

/**
 * A limiter shared by every api instance (Redis), with an in-memory insurance limiter so a Redis
 * outage neither blocks nor unlimits the api, and a timeout so a frozen Redis costs a request at
 * most {@link LIMITER_REDIS_TIMEOUT_MS}.
 */
function sharedLimiter(options: {
  readonly redis?: RedisClient;
  readonly keyPrefix: string;
  readonly points: number;
  readonly duration: number;
  readonly blockDuration?: number;
}): RateLimiterAbstract {
  const { points, duration, blockDuration } = options;
  const memory = new RateLimiterMemory({ keyPrefix: options.keyPrefix, points, duration, blockDuration });
  if (!options.redis) return memory;
  return new RLWrapperTimeouts({
    limiter: new RateLimiterRedis({
      storeClient: options.redis,
      keyPrefix: options.keyPrefix,
      points,
      duration,
      blockDuration,
      rejectIfRedisNotReady: true,
      insuranceLimiter: memory,
    }),
    timeoutMs: LIMITER_REDIS_TIMEOUT_MS,
  }) as unknown as RateLimiterAbstract;
}

function setRateHeaders(ctx: Context, limit: number, remaining: number, resetSeconds: number): void {
  ctx.set('RateLimit-Limit', String(limit));
  ctx.set('RateLimit-Remaining', String(remaining));
  ctx.set('RateLimit-Reset', String(resetSeconds));
}

/**
 * Per-client request limit (Redis, via rate-limiter-flexible). Callers without a key (authentication
 * off, or the open paths such as /openapi.json and the board) are limited per IP: one shared
 * `public` budget would let any anonymous caller exhaust it for everyone, operators on the board
 * included. `keyOf` overrides the key (the board uses its own, per IP). Sets RateLimit-* headers;
 * 429 with Retry-After.
 */
export function createRateLimit(options: {
  readonly redis: RedisClient;
  readonly keyPrefix: string;
  readonly perMinute: number;
  readonly authEnabled: boolean;
  readonly keyOf?: (ctx: Context) => string;
}): AppMiddleware {
  const points = options.perMinute;
  const limiter = sharedLimiter({ redis: options.redis, keyPrefix: options.keyPrefix, points, duration: 60 });
  const keyOf =
    options.keyOf ??
    ((ctx: Context) => {
      const client = ctx.state.client as Client | undefined;
      return options.authEnabled && client?.authenticated ? `client:${client.id}` : `ip:${ctx.ip}`;
    });
  return async (ctx, next) => {
    if (OPEN_PATHS.test(ctx.path)) return next();
    let res: RateLimiterRes;
    try {
      res = await limiter.consume(keyOf(ctx));
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      const retryAfter = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
      setRateHeaders(ctx, points, 0, retryAfter);
      ctx.set('Retry-After', String(retryAfter));
      throw new AppError(
        'RATE_LIMITED',
        `rate limit of ${points} requests per minute reached; retry in ${retryAfter} s`,
      );
    }
    setRateHeaders(ctx, points, res.remainingPoints, Math.ceil(res.msBeforeNext / 1000));
    await next();
  };
}

/** How many more failures an identity (a board user name) may collect than one address, across all addresses. */
export const IDENTITY_FACTOR = 5;

/** Which credential a refusal was about, for the metric and the log. */
export type AuthRealm = 'api_key' | 'jwt' | 'board';

/** Brute-force guard of every credential check; see {@link createAuthFailureGuard}. */
export interface AuthFailureGuard {
  /** Throws 429 when `ctx`'s address, or the presented identity, is blocked; checked before any credential. */
  assertAllowed(ctx: Context, realm: AuthRealm, identity?: string): Promise<void>;
  /** Counts a failed attempt (the caller answers 401); from the limit on, {@link assertAllowed} refuses. */
  recordFailure(ctx: Context, realm: AuthRealm, identity?: string): Promise<void>;
}

/**
 * Failed authentications are limited per client address and per presented identity (the board's
 * user name). After `limit` failures from an address (or `limit` × {@link IDENTITY_FACTOR} for an
 * identity, from all addresses together) within a window of {@link AUTH_FAILURE_WINDOW_SECONDS}, every
 * attempt is refused with 429 for the rest of the window, whatever credentials it presents: a guess
 * that happens to be right still meets 429 and tells nothing. Only failures count: a client
 * presenting valid credentials from another address spends nothing here, and its request quota (the
 * per-client limit, which runs after authentication) is never touched by anyone's failures. Every
 * refusal is counted in `auth_refusals_total{realm, reason}` (`invalid` = 401, `limited` = 429).
 * `limit` 0 turns blocking off (refusals are still counted).
 */
export function createAuthFailureGuard(options: {
  readonly redis?: RedisClient;
  readonly keyPrefix: string;
  readonly limit: number;
  readonly registry: Registry;
}): AuthFailureGuard {
  const refusals = new Counter({
    name: 'auth_refusals_total',
    help: 'Requests refused for their credentials, by realm (api_key, jwt, board) and reason (invalid = 401, limited = 429)',
    labelNames: ['realm', 'reason'] as const,
    registers: [options.registry],
  });
  const { limit } = options;
  const failureLimiter = (suffix: string, points: number) =>
    sharedLimiter({
      redis: options.redis,
      keyPrefix: `${options.keyPrefix}:authfail:${suffix}`,
      points,
      duration: AUTH_FAILURE_WINDOW_SECONDS,
      blockDuration: AUTH_FAILURE_WINDOW_SECONDS,
    });
  // An identity gets IDENTITY_FACTOR times an address's allowance: one address is blocked long before
  // it could lock a user out; only guessing spread over many addresses reaches the identity's limit.
  const byAddress = limit > 0 ? { limiter: failureLimiter('ip', limit), points: limit } : undefined;
  const byIdentity =
    limit > 0 ? { limiter: failureLimiter('id', limit * IDENTITY_FACTOR), points: limit * IDENTITY_FACTOR } : undefined;
  const keysOf = (ctx: Context, realm: AuthRealm, identity?: string) => [
    { ...byAddress!, key: ctx.ip },
    ...(identity ? [{ ...byIdentity!, key: `${realm}:${identity}` }] : []),
  ];
  const refuse = (ctx: Context, realm: AuthRealm, msBeforeNext: number): never => {
    refusals.inc({ realm, reason: 'limited' });
    const retryAfter = Math.max(1, Math.ceil(msBeforeNext / 1000));
    ctx.set('Retry-After', String(retryAfter));
    throw new AppError(
      'RATE_LIMITED',
      `too many failed authentications from this address or for this identity; retry in ${retryAfter} s`,
    );
  };
  return {
    async assertAllowed(ctx, realm, identity) {
      if (!limit) return;
      const counters = keysOf(ctx, realm, identity);
      const states = await Promise.all(counters.map((c) => c.limiter.get(c.key)));
      const blocked = states.filter(
        (s, i): s is RateLimiterRes => s !== null && s.consumedPoints >= counters[i].points,
      );
      if (blocked.length > 0) refuse(ctx, realm, Math.max(...blocked.map((s) => s.msBeforeNext)));
    },
    async recordFailure(ctx, realm, identity) {
      refusals.inc({ realm, reason: 'invalid' });
      if (!limit) return;
      // A rejection only says the counter is past its limit: the next attempt meets assertAllowed's 429.
      await Promise.allSettled(keysOf(ctx, realm, identity).map((c) => c.limiter.consume(c.key)));
    },
  };
}
