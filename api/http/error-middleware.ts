import { AppError, isMongoUnavailable, type ErrorCode, type ErrorDetail, type Logger } from '#common';
import type { AppMiddleware } from './app-state.js';

/** The one table from error codes to HTTP statuses. */
export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = Object.freeze({
  VALIDATION_ERROR: 400,
  INVALID_JSON: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  INVALID_STATE: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL_ERROR: 500,
});

/** Seconds a client should wait before retrying after a 503. */
export const RETRY_AFTER_SECONDS = 5;

/** Turns anything thrown below into the documented error; body-parser errors get their own codes. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { status?: number; type?: string; message?: string };
  if (e?.type === 'entity.too.large' || e?.status === 413) {
    return new AppError('PAYLOAD_TOO_LARGE', 'the request body is larger than the limit', {
      details: [{ field: 'body', message: 'body exceeds BODY_LIMIT' }],
    });
  }
  // Only the body parser throws errors carrying a 4xx status here: a 400 from it is always a body
  // that is not acceptable JSON (bad syntax, a `__proto__` key, a wrong length…).
  if (e?.type === 'entity.parse.failed' || e?.status === 400) {
    return new AppError('INVALID_JSON', 'the request body is not valid JSON', {
      details: [{ field: 'body', message: 'malformed JSON (a JSON object is required)' }],
    });
  }
  if (e?.type === 'encoding.unsupported' || e?.status === 415) {
    return new AppError('UNSUPPORTED_MEDIA_TYPE', 'unsupported content encoding', {
      details: [{ field: 'Content-Encoding', message: 'not supported' }],
    });
  }
  if (isMongoUnavailable(err)) {
    return new AppError('SERVICE_UNAVAILABLE', 'the database is not reachable; retry later', { cause: err });
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
        throw new AppError('NOT_FOUND', `no route for ${ctx.method} ${ctx.path}`);
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
      const details: readonly ErrorDetail[] = appError.details;
      ctx.status = status;
      ctx.body = {
        error: {
          code: appError.code,
          message: appError.message,
          requestId: ctx.state.requestId,
          details,
        },
      };
    }
  };
}
