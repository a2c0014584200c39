import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import { AppError, hashBoardPassword, verifyBoardPassword, type BoardAccount, type BoardRole } from '#common';
import type { AuthFailureGuard } from './rate-limit.js';

export const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Who is at the dashboard: an account's name and role. */
export interface BoardIdentity {
  readonly name: string;
  readonly role: BoardRole;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Compares secrets in constant time (equal-length digests, so length leaks nothing either). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** How long a verified named login is remembered (the board polls every few seconds; scrypt is slow on purpose). */
const VERIFIED_TTL_MS = 5 * 60_000;
const VERIFIED_MAX = 256;

/**
 * The dashboard's credentials: the shared login (`BULL_BOARD_USER`/`BULL_BOARD_PASSWORD`, an
 * operator) and the named accounts of `BULL_BOARD_USERS` (scrypt hashes). Every presented pair costs
 * the same work whether the name exists or not: the shared pair is always compared (constant time),
 * and a name without an account is checked against a throw-away hash. A verified pair is remembered
 * for a few minutes under its sha256 only, so the board's polling does not run scrypt every time.
 * Returns the identity, or undefined for wrong credentials.
 */
export function createBoardCredentials(options: {
  readonly user?: string;
  readonly password?: string;
  readonly accounts: readonly BoardAccount[];
}): (user: string, password: string) => Promise<BoardIdentity | undefined> {
  const verified = new Map<string, { identity: BoardIdentity; until: number }>();
  let decoy: Promise<string> | undefined;
  const decoyHash = () => (decoy ??= hashBoardPassword(randomBytes(16).toString('hex')));
  return async (user, password) => {
    if (options.user !== undefined && options.password !== undefined) {
      // Both comparisons always run, so a wrong user and a wrong password take the same time.
      const userOk = safeEqual(user, options.user);
      const passwordOk = safeEqual(password, options.password);
      if (userOk && passwordOk) return { name: user, role: 'operator' };
    }
    // Without named accounts there is nothing to hide among them: no scrypt for a wrong shared login.
    if (options.accounts.length === 0) return undefined;
    const key = digest(`${user}\u0000${password}`).toString('hex');
    const cached = verified.get(key);
    if (cached && cached.until > Date.now()) return cached.identity;
    const account = options.accounts.find((a) => safeEqual(a.name, user));
    const ok = await verifyBoardPassword(password, account?.passwordHash ?? (await decoyHash()));
    if (!account || !ok) return undefined;
    const identity: BoardIdentity = { name: account.name, role: account.role };
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
    verified.set(key, { identity, until: Date.now() + VERIFIED_TTL_MS });
    return identity;
  };
}

/**
 * Guards everything under the dashboard's path: HTTP basic auth on every request — page, static
 * assets and JSON API — and, for state-changing requests from a browser, a same-origin check
 * (Sec-Fetch-Site, else Origin against Host) so another site cannot make an operator's browser retry
 * or delete jobs. Non-browser clients send neither header and need only the credentials. Guessing is
 * limited by `guard`, per address and per presented user name (an address or user that failed too
 * often meets 429 before its credentials are even checked). The identity goes to `next`.
 */
export function createBoardAuth(options: {
  readonly check: (user: string, password: string) => Promise<BoardIdentity | undefined>;
  readonly guard: AuthFailureGuard;
  readonly realm?: string;
}): (ctx: Context, next: (identity: BoardIdentity) => Promise<void>) => Promise<void> {
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
    const who = match ? await options.check(user, password) : undefined;
    if (!who) {
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
    await next(who);
  };
}

function isSameOrigin(fetchSite: string, origin: string, host: string, protocol: string): boolean {
  if (fetchSite) return fetchSite === 'same-origin' || fetchSite === 'none';
  if (origin) return origin === `${protocol}://${host}`;
  return true;
}
