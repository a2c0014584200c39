/**
 * The payment sandbox (`node dist/scripts/payment-sandbox.js`): the provider API of docs/design.md on
 * PAYMENT_SANDBOX_PORT (default 3002), in memory, for development, the tests and the fault battery.
 * Its misbehaviour is set from PAYMENT_SANDBOX_LATENCY_MS, _FAILURE_RATE, _OUTAGE and _SLOW_MS at start
 * and through `PUT /_settings` at run time (scripts/lib/payment-sandbox/settings.ts).
 * SIGTERM/SIGINT: stops at once (answers still held by the slow mode are dropped) and exits 0.
 */
import { createServer } from 'node:http';
import { createLogger } from '#common';
import { buildSandboxApp } from './lib/payment-sandbox/app.js';
import { SandboxSettingsError, sandboxSettingsFromEnv } from './lib/payment-sandbox/settings.js';

const DEFAULT_PORT = 3002;

const root = createLogger({ service: 'script', level: process.env.LOG_LEVEL || 'info' });
const logger = root.child({ module: 'payment-sandbox' });

function portFromEnv(raw: string | undefined): number {
  if (raw === undefined || raw === '') return DEFAULT_PORT;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SandboxSettingsError(['PAYMENT_SANDBOX_PORT must be an integer from 0 to 65535']);
  }
  return port;
}

function main(): void {
  let port: number;
  let settings;
  try {
    port = portFromEnv(process.env.PAYMENT_SANDBOX_PORT);
    settings = sandboxSettingsFromEnv(process.env);
  } catch (err) {
    if (!(err instanceof SandboxSettingsError)) throw err;
    logger.fatal({ problems: err.problems }, err.message);
    logger.flush();
    process.exitCode = 78;
    return;
  }
  const stopping = new AbortController();
  const app = buildSandboxApp(settings, { logger: root, signal: stopping.signal });
  const server = createServer(app.callback());

  let signals = 0;
  const stop = (signal: string) => {
    signals += 1;
    if (signals > 1) process.exit(130);
    logger.info({ signal }, 'payment sandbox stopping');
    stopping.abort();
    server.close(() => {
      logger.info('payment sandbox stopped');
      logger.flush();
      process.exit(0);
    });
    // A dev tool holds no state worth draining: in-flight answers are dropped.
    server.closeAllConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  server.on('error', (err) => {
    logger.fatal({ err }, 'payment sandbox cannot listen');
    logger.flush();
    process.exit(1);
  });
  server.listen(port, () => {
    const address = server.address();
    const bound = typeof address === 'object' && address ? address.port : port;
    logger.info(
      { port: bound, settings },
      `payment sandbox listening on http://127.0.0.1:${bound} (PUT /_settings to make it slow or take it down)`,
    );
    process.send?.('ready');
  });
}

main();
