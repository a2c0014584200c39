import type { DefaultContext, Middleware } from 'koa';
import type { Client } from './auth.js';

/**
 * What the api's middleware leaves on `ctx.state` for everything after it: typed once here rather than
 * cast where it is read. `requestId` is set by the request context (outermost), `client` by
 * authentication, which runs before any router.
 */
export interface AppState {
  /** The request's id: the caller's well-formed `X-Request-Id`, else generated; the job's correlationId. */
  requestId: string;
  /** Who is calling (the `public` client when authentication is off or the path is open). */
  client: Client;
}

/** Koa's context as the api uses it (nothing added to it: per-request data lives in {@link AppState}). */
export type AppContext = DefaultContext;

/** A middleware of this app: sees {@link AppState} on `ctx.state`. */
export type AppMiddleware = Middleware<AppState, AppContext>;
