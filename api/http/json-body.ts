import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { koaBody } from 'koa-body';
import type { Middleware } from 'koa';
import { AppError } from '#common';

/**
 * The api's one body parser: JSON objects or arrays only (`jsonStrict`), at most `bodyLimit`, and
 * nothing else parsed (no forms, text or uploads). Errors reach the error middleware as 400/413/415.
 */
export function createJsonBody(bodyLimit: string): Middleware {
  return koaBody({
    json: true,
    jsonStrict: true,
    jsonLimit: bodyLimit,
    urlencoded: false,
    text: false,
    multipart: false,
    patchNode: false,
  });
}

/**
 * For routes whose body is optional: no body, or a JSON object (a body of another type is a 415). One
 * middleware: the content-type check, then the parser.
 */
export function createOptionalJsonBody(bodyLimit: string): Middleware {
  const parse = createJsonBody(bodyLimit);
  return async (ctx, next) => {
    // A chunked body has no Content-Length: Transfer-Encoding says there is a body all the same.
    const hasBody = Boolean(ctx.request.length) || ctx.get('transfer-encoding') !== '';
    if (hasBody && !ctx.request.is('application/json')) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'this route takes application/json', {
        details: [{ field: 'Content-Type', message: 'must be application/json' }],
      });
    }
    await parse(ctx, next);
  };
}

const UNITS: Readonly<Record<string, number>> = { b: 1, kb: 1024, mb: 1024 * 1024 };

/** `BODY_LIMIT` (`100kb`, `1mb`, `512b`) in bytes, as the body parser reads it. */
export function bodyLimitBytes(bodyLimit: string): number {
  const match = /^(\d+)(b|kb|mb)$/i.exec(bodyLimit);
  if (!match) throw new Error(`not a body limit: ${bodyLimit}`);
  return Number(match[1]) * UNITS[match[2].toLowerCase()];
}

/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1): Node answers `100 Continue` to every such request on its
 * own, inviting a body the api is about to refuse. With this listener a request whose
 * `Content-Length` already exceeds `bodyLimit` goes to the app without it, and the app answers 413
 * at once (and closes the connection: the body may or may not follow); others get their 100 first.
 */
export function refuseOversizedContinue(server: Server, bodyLimit: string): void {
  const limit = bodyLimitBytes(bodyLimit);
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const declared = Number(req.headers['content-length']);
    if (!(Number.isFinite(declared) && declared > limit)) res.writeContinue();
    server.emit('request', req, res);
  });
}
