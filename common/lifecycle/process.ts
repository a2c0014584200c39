import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { ConfigError } from '../config/config.js';

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * Crash policy and the second-signal rule for every process. An uncaught exception or unhandled
 * rejection is logged as fatal and the process exits 1 for its supervisor to restart it (running on
 * in an unknown state is worse). A second SIGTERM/SIGINT while shutting down exits at once.
 * `onFirstSignal` runs the graceful shutdown; processes served by terminus pass none (terminus owns it).
 */
export function installProcessHandlers(options: {
  readonly logger: Logger;
  readonly onFirstSignal?: (signal: string) => void;
}): void {
  const { logger } = options;
  let signals = 0;
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      signals += 1;
      if (signals === 1) {
        logger.info({ signal }, 'shutdown requested');
        options.onFirstSignal?.(signal);
      } else {
        logger.warn({ signal }, 'second signal: exiting now');
        logger.flush();
        process.exit(130);
      }
    });
  }
  const fatal = (err: unknown, kind: string) => {
    logger.fatal({ err, kind }, 'fatal error, exiting');
    logger.flush();
    process.exit(1);
  };
  process.on('uncaughtException', (err) => fatal(err, 'uncaughtException'));
  process.on('unhandledRejection', (err) => fatal(err, 'unhandledRejection'));
}

/** Resolves with the promise's value, or rejects with `message` after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string | (() => Error)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(typeof message === 'string' ? new Error(message) : message()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts `server` listening on `port` (0: a free one) and resolves with the port it got; rejects when
 * it cannot listen (e.g. EADDRINUSE).
 */
export async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}

/** Tells pm2 (or any parent with an IPC channel) that the process can serve. */
export function signalReady(): void {
  process.send?.('ready');
}

/**
 * The tail of every entry point: runs `main`; when it fails, says why on stderr and exits — 78
 * (EX_CONFIG) with what to fix for a {@link ConfigError}, 1 with the stack for anything else.
 */
export function runMain(service: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(
        `${service}: ${err.message}\nFix the environment variables above (see README, "Configuration").\n`,
      );
      process.exit(78);
    }
    process.stderr.write(`${service}: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
