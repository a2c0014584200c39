// First: starts tracing (when configured) before the modules it instruments load.
import { tracing } from './instrument.js';
import cluster from 'node:cluster';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTerminus, HealthCheckError } from '@godaddy/terminus';
import {
  ConfigError,
  createLogContext,
  createLogger,
  installProcessHandlers,
  loadConfig,
  redactUrl,
  signalReady,
} from '#common';
import { createApiContainer } from './container.js';
import { createApiServer } from './http/api-server.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logContext = createLogContext();
  // In pm2's cluster mode only what goes through process.stdout reaches the app's log (a direct
  // write to fd 1 lands in pm2's own daemon log).
  const logger = createLogger({
    service: 'api',
    level: config.logLevel,
    context: logContext,
    destination: cluster.isWorker ? process.stdout : undefined,
    pretty: config.logPretty || process.stdout.isTTY === true,
  });
  installProcessHandlers({ logger });
  const container = createApiContainer({ config, logger, logContext });

  const server = createApiServer(container.app.callback());
  const shutdown = new AbortController();
  // While draining, every answer asks the client to close its keep-alive connection, so no request
  // races onto a socket the server is about to close (pm2 reload, rolling updates).
  let draining = false;
  server.on('request', (_req, res) => {
    if (draining) res.setHeader('Connection', 'close');
  });
  createTerminus(server, {
    signals: ['SIGTERM', 'SIGINT'],
    timeout: config.shutdownTimeoutMs,
    useExit0: true,
    healthChecks: {
      verbatim: true,
      '/health/live': async () => ({ status: 'ok' }),
      // The api can serve while Redis is away (it answers 202 and the reconciler enqueues later),
      // so only MongoDB decides whether it takes traffic.
      '/health/ready': async () => {
        const mongodb = await container.checks.mongodb();
        if (mongodb.status === 'down') throw new HealthCheckError('not ready', { mongodb });
        return { mongodb };
      },
    },
    // Readiness is already 503 here; keep serving for SHUTDOWN_DRAIN_MS so load balancers (or pm2's
    // cluster master) stop sending new connections before the server stops accepting them.
    beforeShutdown: async () => {
      draining = true;
      if (config.shutdownDrainMs > 0) await sleep(config.shutdownDrainMs);
    },
    onSignal: async () => {
      shutdown.abort();
      logger.info('http server closed; closing connections');
      await container.close();
    },
    onShutdown: async () => {
      await tracing.shutdown();
      logger.info('api stopped');
      logger.flush();
    },
    logger: (msg, err) => logger.error({ err }, msg),
  });

  await new Promise<void>((resolve) => server.listen(config.apiPort, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.apiPort;
  logger.info(
    { port, mongo: redactUrl(config.mongoUrl), redis: redactUrl(config.redisUrl) },
    `api listening on http://127.0.0.1:${port}`,
  );

  try {
    await container.connect(shutdown.signal);
    logger.info('MongoDB connected, indexes in place');
  } catch (err) {
    if (shutdown.signal.aborted) return; // stopped before MongoDB answered; terminus exits
    throw err;
  }
  // Ready for pm2 only once orders can be stored: a reload must not route traffic to an instance
  // that would answer 503. (The probes answer from the start, and report MongoDB until then.)
  signalReady();
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`api: ${err.message}\nFix the environment variables above (see README, "Configuration").\n`);
    process.exit(78);
  }
  process.stderr.write(`api: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
