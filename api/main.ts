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
import { createApiServer } from './http/security-headers.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logContext = createLogContext();
  const logger = createLogger({ service: 'api', level: config.logLevel, context: logContext });
  installProcessHandlers({ logger });
  const container = createApiContainer({ config, logger, logContext });

  const server = createApiServer(container.app.callback());
  const shutdown = new AbortController();
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
    onSignal: async () => {
      shutdown.abort();
      logger.info('http server closed; closing connections');
      await container.close();
    },
    onShutdown: async () => {
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
  signalReady();

  try {
    await container.connect(shutdown.signal);
    logger.info('MongoDB connected, indexes in place');
  } catch (err) {
    if (shutdown.signal.aborted) return; // stopped before MongoDB answered; terminus exits
    throw err;
  }
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`api: ${err.message}\nFix the environment variables above (see README, "Configuration").\n`);
    process.exit(78);
  }
  process.stderr.write(`api: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
