import { randomUUID } from 'node:crypto';
import type { LogContext, Logger } from '#common';
import type { AppMiddleware } from './app-state.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Outermost middleware: gives every request an id (the caller's `X-Request-Id` when well-formed),
 * runs the rest of the chain inside the async log context so every line carries it, echoes it in
 * the response, and writes one access line per request (method, route template, status, duration).
 */
export function createRequestContext({
  logger,
  context,
}: {
  readonly logger: Logger;
  readonly context: LogContext;
}): AppMiddleware {
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    await context.run({ requestId }, async () => {
      try {
        await next();
      } finally {
        const status = ctx.status;
        const line = {
          method: ctx.method,
          route: (ctx as { _matchedRoute?: string })._matchedRoute ?? null,
          status,
          durationMs: Math.round((performance.now() - started) * 10) / 10,
        };
        if (status >= 500) logger.error(line, 'request');
        else logger.info(line, 'request');
      }
    });
  };
}
