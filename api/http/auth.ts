import { createHash, timingSafeEqual } from 'node:crypto';
import { AppError, PUBLIC_SCOPE, type ApiKey } from '#common';
import type { AppMiddleware } from './app-state.js';

/** Who is calling: the client id scopes idempotency keys and order reads. */
export interface Client {
  readonly id: string;
  readonly admin: boolean;
  /** True only when a configured API key was presented; the `public` caller is not authenticated. */
  readonly authenticated: boolean;
}

/** Paths anyone may call: probes, metrics, the API description, and the board (it has its own auth). */
const OPEN_PATHS = /^\/(health\/(live|ready)|metrics|openapi\.json|admin\/queues(\/.*)?)$/;

/**
 * `Authorization: Bearer <key>` (the scheme name is case-insensitive, RFC 9110 §11.1): the key's
 * sha256 is compared with every configured hash in constant time (all of them, so timing tells
 * nothing about which one matched or how many there are). With authentication off every caller is
 * the `public` client, with admin rights (development only); with it on, callers of the open paths
 * are the `public` client without them.
 */
export function createAuthenticate(options: {
  readonly enabled: boolean;
  readonly keys: readonly ApiKey[];
}): AppMiddleware {
  const keys = options.keys.map((k) => ({ ...k, hash: Buffer.from(k.sha256, 'hex') }));
  const publicClient: Client = Object.freeze({ id: PUBLIC_SCOPE, admin: !options.enabled, authenticated: false });
  return async (ctx, next) => {
    if (!options.enabled || OPEN_PATHS.test(ctx.path)) {
      ctx.state.client = publicClient;
      return next();
    }
    const match = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(ctx.get('authorization'));
    let found: (typeof keys)[number] | undefined;
    if (match) {
      const presented = createHash('sha256').update(match[1]).digest();
      for (const key of keys) {
        if (timingSafeEqual(presented, key.hash) && !found) found = key;
      }
    }
    if (!found) {
      ctx.set('WWW-Authenticate', 'Bearer realm="orders"');
      throw new AppError('UNAUTHORIZED', 'a valid API key is required (Authorization: Bearer <key>)');
    }
    ctx.state.client = Object.freeze({ id: found.clientId, admin: found.admin, authenticated: true }) satisfies Client;
    await next();
  };
}

/** Admin routes (the dead-letter queue) need a key marked `:admin`. */
export const requireAdmin: AppMiddleware = async (ctx, next) => {
  const client: Client | undefined = ctx.state.client;
  if (!client?.admin) throw new AppError('UNAUTHORIZED', 'this route needs an admin API key');
  await next();
};
