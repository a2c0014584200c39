import { createHash, timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';
import { AppError } from '#common';
import type { AuthFailureGuard } from './rate-limit.js';

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Compares secrets in constant time (equal-length digests, so length leaks nothing either). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * Guards everything under the dashboard's path: HTTP basic auth (constant-time comparison) on every
 * request — page, static assets and JSON API — and, for state-changing requests from a browser, a
 * same-origin check (Sec-Fetch-Site, else Origin against Host) so another site cannot make an
 * operator's browser retry or delete jobs. Non-browser clients send neither header and need only
 * the credentials. Guessing is limited by `guard`, per address and per presented user name (an
 * address or user that failed too often meets 429 before its credentials are even compared).
 */
export function createBoardAuth(options: {
  readonly user: string;
  readonly password: string;
  readonly guard: AuthFailureGuard;
  readonly realm?: string;
}): Middleware {
  const realm = options.realm ?? 'orders dashboard';
  const { guard } = options;
  return async (ctx, next) => {
    const header = ctx.get('authorization');
    const match = /^Basic ([A-Za-z0-9+/=]{1,1024})$/i.exec(header);
    const decoded = match ? Buffer.from(match[1], 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const user = colon >= 0 ? decoded.slice(0, colon) : '';
    const password = colon >= 0 ? decoded.slice(colon + 1) : '';
    // The user name is the attacker's text: only its digest becomes a limiter key.
    const identity = user ? digest(user).toString('hex').slice(0, 32) : undefined;
    await guard.assertAllowed(ctx, 'board', identity);
    // Both comparisons always run, so a wrong user and a wrong password take the same time.
    const userOk = safeEqual(user, options.user);
    const passwordOk = safeEqual(password, options.password);
    if (!match || !(userOk && passwordOk)) {
      await guard.recordFailure(ctx, 'board', identity);
      ctx.set('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
      throw new AppError('UNAUTHORIZED', 'dashboard credentials required');
    }
    if (
      UNSAFE_METHODS.has(ctx.method) &&
      !isSameOrigin(ctx.get('sec-fetch-site'), ctx.get('origin'), ctx.host, ctx.protocol)
    ) {
      throw new AppError('FORBIDDEN', 'cross-site request refused', {
        details: [{ field: 'Origin', message: 'state-changing dashboard calls must come from the dashboard itself' }],
      });
    }
    await next();
  };
}

function isSameOrigin(fetchSite: string, origin: string, host: string, protocol: string): boolean {
  if (fetchSite) return fetchSite === 'same-origin' || fetchSite === 'none';
  if (origin) return origin === `${protocol}://${host}`;
  return true;
}
