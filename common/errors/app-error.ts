/** The closed set of error codes the system reports (docs/design.md, "HTTP interface"). */
export const ERROR_CODES = [
  'VALIDATION_ERROR',
  'INVALID_JSON',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'INVALID_STATE',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'IDEMPOTENCY_KEY_REUSED',
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
  'INTERNAL_ERROR',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The one table from error codes to HTTP statuses (the api's error middleware, the worker's profile route). */
export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = Object.freeze({
  VALIDATION_ERROR: 400,
  INVALID_JSON: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  INVALID_STATE: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL_ERROR: 500,
});

/** One entry of an error's `details`: which field, and what is wrong with it. */
export interface ErrorDetail {
  readonly field: string;
  readonly message: string;
}

/**
 * The one error type services throw. It knows nothing of HTTP: the api's error middleware maps
 * `code` to a status. `expose` is false for messages that must not reach a client.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: readonly ErrorDetail[];

  constructor(code: ErrorCode, message: string, options: { details?: ErrorDetail[]; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = options.details ?? [];
  }
}

/** True for the errors the MongoDB driver raises when the server cannot be reached in time. */
export function isMongoUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    /^Mongo(ServerSelection|Network|NetworkTimeout|NotConnected|TopologyClosed|PoolCleared|OperationTimeout|WaitQueueTimeout|Deadline|BatchUnavailable)Error$/.test(
      err.name,
    ) ||
    // mongoose with bufferCommands off, before the first connection or after close
    /before initial connection is complete|Connection was force closed|client was closed/i.test(err.message)
  );
}

/** True for the errors ioredis raises when Redis cannot take a command right now. */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    /Stream isn't writeable|Connection is closed|Command timed out|ECONNREFUSED|ETIMEDOUT|ECONNRESET|OOM command not allowed|MaxRetriesPerRequest/i.test(
      err.message,
    ) ||
    // A Sentinel or Cluster failover in progress: no master known yet, or the slot's master is gone.
    /^(READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b|Cluster isn't ready|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes is available|All sentinels are unreachable/.test(
      err.message,
    ) ||
    err.name === 'MaxRetriesPerRequestError'
  );
}
