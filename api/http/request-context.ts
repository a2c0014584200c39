import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import type { LogContext, Logger } from '#common';
import type { AppMiddleware } from './app-state.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The most of a refused body read and thrown away to keep the connection usable; past it the socket is closed. */
export const DRAIN_LIMIT_BYTES = 8 * 1024 * 1024;

/**
 * An answer sent before the request body was read whole (413, 415, 400, 401…) must not strand the
 * connection: the rest of the body would sit in front of the keep-alive client's next request, which
 * then gets no answer. The rest is read and discarded (up to {@link DRAIN_LIMIT_BYTES}, else the
 * socket is closed); when the body was never invited (`Expect: 100-continue` refused) or is larger
 * than that, the answer says `Connection: close` and the connection ends after it.
 */
function settleUnreadBody(ctx: Context): void {
  const req: IncomingMessage = ctx.req;
  if (req.complete || req.readableEnded) return;
  const declared = Number(req.headers['content-length'] ?? 0);
  const hasBody = declared > 0 || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) return;
  const expectContinue = /100-continue/i.test(req.headers.expect ?? '');
  if (expectContinue || declared > DRAIN_LIMIT_BYTES) {
    if (!ctx.headerSent) ctx.set('Connection', 'close');
    return;
  }
  let drained = 0;
  req.unpipe();
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_LIMIT_BYTES) req.socket.destroy();
  });
  req.resume();
}

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
        settleUnreadBody(ctx);
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
