import type { Redis } from 'ioredis';
import { RLWrapperTimeouts, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';

/** A frozen Redis must not hold requests: past this the in-memory insurance limiter decides. */
export const LIMITER_REDIS_TIMEOUT_MS = 100;
import { AppError } from '#common';
import type { AppMiddleware } from './app-state.js';
import type { Client } from './auth.js';

const OPEN_PATHS = /^\/(health\/(live|ready)|metrics)$/;

/**
 * Per-client limit shared by every api instance (Redis, via rate-limiter-flexible), with an
 * in-memory limiter as insurance so a Redis outage neither blocks nor unlimits the api. Callers
 * without a key (authentication off, or the open paths such as /openapi.json and the board) are
 * limited per IP: one shared `public` budget would let any anonymous caller exhaust it for everyone,
 * operators on the board included. Sets RateLimit-* headers; 429 with Retry-After.
 */
export function createRateLimit(options: {
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly perMinute: number;
  readonly authEnabled: boolean;
}): AppMiddleware {
  const points = options.perMinute;
  const limiter = new RLWrapperTimeouts({
    limiter: new RateLimiterRedis({
      storeClient: options.redis,
      keyPrefix: options.keyPrefix,
      points,
      duration: 60,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory({ points, duration: 60 }),
    }),
    timeoutMs: LIMITER_REDIS_TIMEOUT_MS,
  });
  return async (ctx, next) => {
    if (OPEN_PATHS.test(ctx.path)) return next();
    const client: Client | undefined = ctx.state.client;
    const key = options.authEnabled && client?.authenticated ? `client:${client.id}` : `ip:${ctx.ip}`;
    let res: RateLimiterRes;
    try {
      res = await limiter.consume(key);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      const retryAfter = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
      ctx.set('RateLimit-Limit', String(points));
      ctx.set('RateLimit-Remaining', '0');
      ctx.set('RateLimit-Reset', String(retryAfter));
      ctx.set('Retry-After', String(retryAfter));
      throw new AppError(
        'RATE_LIMITED',
        `rate limit of ${points} requests per minute reached; retry in ${retryAfter} s`,
      );
    }
    ctx.set('RateLimit-Limit', String(points));
    ctx.set('RateLimit-Remaining', String(res.remainingPoints));
    ctx.set('RateLimit-Reset', String(Math.ceil(res.msBeforeNext / 1000)));
    await next();
  };
}
