import type { Context } from 'koa';
import { AppError, PUBLIC_SCOPE, createApiKeyMatcher, type ApiKey } from '#common';
import type { AppMiddleware } from './app-state.js';
import { JWT_SHAPE, type JwtVerifier } from './jwt-verifier.js';
import type { AuthFailureGuard } from './rate-limit.js';

/** Who is calling: the client id scopes idempotency keys and order reads. */
export interface Client {
  readonly id: string;
  readonly admin: boolean;
  /** True only when a configured API key or a valid JWT was presented; the `public` caller is not authenticated. */
  readonly authenticated: boolean;
}

/** Paths anyone may call: probes, metrics, the API description, and the board (it has its own auth). */
const OPEN_PATHS = /^\/(health\/(live|ready)|metrics|openapi\.json|admin\/queues(\/.*)?)$/;

/** A bearer credential: an API key (up to 512 characters) or a JWT (up to 8 KiB). */
const BEARER = /^Bearer ([\x21-\x7e]{1,8192})$/i;

/**
 * `Authorization: Bearer <credential>` (the scheme name is case-insensitive, RFC 9110 §11.1). A
 * credential shaped like a JWT is verified by `jwt` when configured; anything else is an API key,
 * whose sha256 is compared with every configured hash in constant time (all of them, so timing
 * tells nothing about which one matched or how many there are). Before any comparison, `guard`
 * refuses (429) an address that failed too often, and every failure is counted there. With
 * authentication off every caller is the `public` client, with admin rights (development only);
 * with it on, callers of the open paths are the `public` client without them.
 */
export function createAuthenticate(options: {
  readonly enabled: boolean;
  readonly keys: readonly ApiKey[];
  readonly guard: AuthFailureGuard;
  readonly jwt?: JwtVerifier;
}): AppMiddleware {
  const matchKey = createApiKeyMatcher(options.keys);
  const publicClient: Client = Object.freeze({ id: PUBLIC_SCOPE, admin: !options.enabled, authenticated: false });
  const { guard, jwt } = options;

  const fromApiKey = (presented: string): Client | undefined => {
    const found = matchKey(presented);
    return found && { id: found.clientId, admin: found.admin, authenticated: true };
  };

  const refuse = async (ctx: Context, realm: 'api_key' | 'jwt'): Promise<never> => {
    await guard.recordFailure(ctx, realm);
    ctx.set(
      'WWW-Authenticate',
      realm === 'jwt' ? 'Bearer realm="orders", error="invalid_token"' : 'Bearer realm="orders"',
    );
    throw new AppError(
      'UNAUTHORIZED',
      jwt
        ? 'a valid API key or token is required (Authorization: Bearer <key or JWT>)'
        : 'a valid API key is required (Authorization: Bearer <key>)',
    );
  };

  return async (ctx, next) => {
    if (!options.enabled || OPEN_PATHS.test(ctx.path)) {
      ctx.state.client = publicClient;
      return next();
    }
    const presented = BEARER.exec(ctx.get('authorization'))?.[1];
    const realm = jwt && presented && JWT_SHAPE.test(presented) ? 'jwt' : 'api_key';
    await guard.assertAllowed(ctx, realm);
    let client: Client | undefined;
    if (presented && realm === 'jwt') {
      const identity = await jwt!.verify(presented);
      client = identity && { id: identity.clientId, admin: identity.admin, authenticated: true };
    } else if (presented) {
      client = fromApiKey(presented);
    }
    if (!client) return refuse(ctx, realm);
    ctx.state.client = Object.freeze(client) satisfies Client;
    await next();
  };
}

/** Admin routes (the dead-letter queue) need a key marked `:admin` (or a token granting the admin scope). */
export const requireAdmin: AppMiddleware = async (ctx, next) => {
  const client: Client | undefined = ctx.state.client;
  if (!client?.admin) throw new AppError('UNAUTHORIZED', 'this route needs an admin API key');
  await next();
};
