import { AsyncLocalStorage } from 'node:async_hooks';
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Fields stamped on every log line written inside a request or a job (requestId, orderId, …). */
export type LogFields = Record<string, string | number | undefined>;

/** Async-local store of the current request's or job's log fields. One per process, made by its entry point. */
export type LogContext = AsyncLocalStorage<LogFields>;

export function createLogContext(): LogContext {
  return new AsyncLocalStorage<LogFields>();
}

export interface LoggerOptions {
  readonly service: 'api' | 'worker' | 'health' | 'script' | 'test';
  readonly level: string;
  /** When given, the fields of the current async context are added to each line. */
  readonly context?: LogContext;
  /** Where to write; stdout when omitted (tests pass a stream to read lines back). */
  readonly destination?: NodeJS.WritableStream;
  /**
   * Human-readable, coloured lines (pino-pretty) instead of JSON, for a developer's terminal only: log
   * shippers and the tests read JSON. Ignored when `destination` is given.
   */
  readonly pretty?: boolean;
}

/**
 * JSON lines to stdout with `service` and `pid` on every line. Secrets that could reach a log by
 * accident (authorization headers, passwords in URLs) are redacted. With `pretty`, the same lines are
 * formatted by pino-pretty in a worker thread (loaded only then).
 */
export function createLogger(options: LoggerOptions): Logger {
  const { context } = options;
  return pino(
    {
      level: options.level,
      base: { service: options.service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', '*.password'],
        censor: '[redacted]',
      },
      // A copy: pino merges each line's own fields into the object the mixin returns (Object.assign),
      // so returning the request's store itself would leak one line's fields into every later line.
      mixin: context ? () => ({ ...context.getStore() }) : undefined,
    },
    options.destination ??
      (options.pretty
        ? pino.transport({ target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } })
        : pino.destination({ sync: false })),
  );
}

/** Removes `user:password@` from a connection URL before it is logged or printed. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
