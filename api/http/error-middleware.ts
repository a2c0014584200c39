import { AppError, STATUS_BY_CODE, isMongoUnavailable, type ErrorDetail, type Logger } from '#common';
import type { AppMiddleware } from './app-state.js';

/** The one table from error codes to HTTP statuses lives in common (the worker's profile route answers with it too). */
export { STATUS_BY_CODE };

/** Seconds a client should wait before retrying after a 503. */
export const RETRY_AFTER_SECONDS = 5;

/** Echoed text (paths, keys, values) is cut to this many characters: an 8 KiB path must not come back whole. */
export const MAX_ECHO_CHARS = 200;

/** `text` cut to {@link MAX_ECHO_CHARS}, with an ellipsis when something was cut. */
export function truncateEcho(text: string): string {
  return text.length > MAX_ECHO_CHARS ? `${text.slice(0, MAX_ECHO_CHARS - 1)}…` : text;
}

/** The message @hapi/bourne (co-body's JSON parser) throws for a `__proto__` key. */
const PROTO_KEY_MESSAGE = 'Object contains forbidden prototype property';
const MAX_PROTO_FIELDS = 20;

/**
 * Where `__proto__` keys sit in a body that is valid JSON (`__proto__`, `items.0.__proto__`,
 * `metadata.__proto__`), in the dotted form the validation details use. `JSON.parse` makes such a
 * key an own property (never a prototype), so walking the parsed value is safe; the walk is
 * iterative, so a deeply nested body cannot overflow the stack.
 */
export function protoKeyPaths(json: string): string[] {
  let root: unknown;
  try {
    root = JSON.parse(json);
  } catch {
    return [];
  }
  const found: string[] = [];
  const stack: Array<{ value: unknown; path: string[] }> = [{ value: root, path: [] }];
  while (stack.length > 0 && found.length < MAX_PROTO_FIELDS) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
    for (const [key, child] of entries.reverse()) {
      if (key === '__proto__' && !Array.isArray(value)) found.push(truncateEcho([...path, key].join('.')));
      stack.push({ value: child, path: path.length < 64 ? [...path, key] : path });
    }
  }
  return found;
}

/** A zlib or brotli failure while inflating the body: the client sent bytes that are not what its Content-Encoding says. */
function isDecodeError(e: { code?: unknown; errno?: unknown; status?: number }): boolean {
  return (
    e.status === undefined &&
    typeof e.code === 'string' &&
    typeof e.errno === 'number' &&
    (e.code.startsWith('Z_') || e.code.startsWith('ERR_BROTLI') || e.code.startsWith('ERR__'))
  );
}

/** Turns anything thrown below into the documented error; body-parser errors get their own codes. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as {
    status?: number;
    type?: string;
    message?: string;
    body?: unknown;
    code?: unknown;
    errno?: unknown;
  };
  if (e?.type === 'entity.too.large' || e?.status === 413) {
    return new AppError('PAYLOAD_TOO_LARGE', 'the request body is larger than the limit', {
      details: [{ field: 'body', message: 'body exceeds BODY_LIMIT' }],
    });
  }
  // Valid JSON with a `__proto__` key: the JSON is fine, the field is not allowed (like any unknown key).
  if (e?.status === 400 && e.message === PROTO_KEY_MESSAGE && typeof e.body === 'string') {
    const fields = protoKeyPaths(e.body);
    return new AppError('VALIDATION_ERROR', 'the request body is invalid', {
      details: (fields.length > 0 ? fields : ['__proto__']).map((field) => ({
        field,
        message: '"__proto__" is not allowed',
      })),
    });
  }
  // Only the body parser throws errors carrying a 4xx status here: a 400 from it is always a body
  // that is not acceptable JSON (bad syntax, a wrong length, a body cut short…).
  if (e?.type === 'entity.parse.failed' || e?.status === 400) {
    return new AppError('INVALID_JSON', 'the request body is not valid JSON', {
      details: [{ field: 'body', message: 'malformed JSON (a JSON object is required)' }],
    });
  }
  if (e && isDecodeError(e)) {
    return new AppError('INVALID_JSON', 'the request body could not be decoded', {
      details: [{ field: 'Content-Encoding', message: 'the body is not valid data of its Content-Encoding' }],
    });
  }
  if (e?.type === 'charset.unsupported') {
    return new AppError('UNSUPPORTED_MEDIA_TYPE', 'unsupported charset', {
      details: [{ field: 'Content-Type', message: 'only utf-8 JSON is accepted' }],
    });
  }
  if (e?.type === 'encoding.unsupported' || e?.status === 415) {
    return new AppError('UNSUPPORTED_MEDIA_TYPE', 'unsupported content encoding', {
      details: [{ field: 'Content-Encoding', message: 'supported: identity, gzip, deflate, br' }],
    });
  }
  if (isMongoUnavailable(err)) {
    return new AppError('SERVICE_UNAVAILABLE', 'the database is not reachable; retry later', { cause: err });
  }
  // Any other client error a library raised (http-errors with a 4xx status) stays a client error.
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return new AppError('VALIDATION_ERROR', 'the request cannot be processed as sent', {
      details: [{ field: 'request', message: truncateEcho(String(e.message ?? 'bad request')) }],
    });
  }
  return new AppError('INTERNAL_ERROR', 'internal error', { cause: err });
}

/**
 * First in the chain: every error, and every unmatched path, leaves as
 * `{ error: { code, message, requestId, details } }`. A 5xx never carries the internal message or stack.
 */
export function createErrorMiddleware({ logger }: { readonly logger: Logger }): AppMiddleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new AppError('NOT_FOUND', `no route for ${ctx.method} ${truncateEcho(ctx.path)}`);
      }
    } catch (err) {
      const appError = toAppError(err);
      const status = STATUS_BY_CODE[appError.code];
      if (appError.code === 'INTERNAL_ERROR') {
        logger.error({ err }, 'unhandled error');
      } else if (status >= 500) {
        logger.warn({ err: appError.cause ?? appError, code: appError.code }, 'dependency unavailable');
      }
      if (status === 503) ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
      // Messages and details can quote the request (paths, keys, values): never more than a few hundred bytes of it.
      const details: readonly ErrorDetail[] = appError.details.map((d) => ({
        ...d,
        field: truncateEcho(d.field),
        message: truncateEcho(d.message),
      }));
      ctx.status = status;
      ctx.body = {
        error: {
          code: appError.code,
          message: truncateEcho(appError.message),
          requestId: ctx.state.requestId,
          details,
        },
      };
    }
  };
}
