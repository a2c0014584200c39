// First: starts tracing (when configured) before the modules it instruments load.
import { tracing } from './instrument.js';
import { createServer } from 'node:http';
import { createTerminus } from '@godaddy/terminus';
import {
  ConfigError,
  createDependencyChecks,
  createLogger,
  createMetricsRegistry,
  createMongoConnection,
  createOrdersQueue,
  createRedisConnection,
  installProcessHandlers,
  loadConfig,
  openMongo,
  signalReady,
} from '#common';
import { createQueueCheck } from './checks/queue-check.js';
import { createReadinessCheck } from './checks/readiness.js';
import { registerHealthMetrics } from './health-metrics.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger({
    service: 'health',
    level: config.logLevel,
    pretty: config.logPretty || process.stdout.isTTY === true,
  });
  installProcessHandlers({ logger });

  const mongo = createMongoConnection();
  const redis = createRedisConnection(config.redisUrl, {
    role: 'producer',
    commandTimeoutMs: config.healthTimeoutMs,
    connectionName: 'health',
  });
  redis.on('error', () => undefined); // readiness reports it; logging each reconnect attempt is noise
  const queue = createOrdersQueue(redis, { prefix: config.queuePrefix, ...config });
  queue.on('error', () => undefined);

  const checks = createDependencyChecks({ mongo, redis, timeoutMs: config.healthTimeoutMs });
  const readiness = createReadinessCheck(checks);
  const queueReport = createQueueCheck({ queue, timeoutMs: config.healthTimeoutMs });
  const registry = createMetricsRegistry('health');
  registerHealthMetrics({ registry, checks, queueReport });

  const server = createServer((req, res) => {
    const send = (status: number, body: unknown, type = 'application/json') => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/metrics') {
      registry.metrics().then(
        (text) => send(200, text, registry.contentType),
        () => send(500, ''),
      );
    } else if (req.method === 'GET' && req.url === '/health') {
      void (async () => {
        const [mongodb, redisResult] = await Promise.all([checks.mongodb(), checks.redis()]);
        const queueResult =
          redisResult.status === 'up' ? await queueReport().catch((err: Error) => ({ error: err.message })) : null;
        const ok = mongodb.status === 'up' && redisResult.status === 'up';
        send(ok ? 200 : 503, {
          status: ok ? 'ok' : 'error',
          dependencies: { mongodb, redis: redisResult },
          queue: queueResult,
        });
      })();
    } else {
      send(404, { error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${req.url}`, details: [] } });
    }
  });

  const shutdown = new AbortController();
  createTerminus(server, {
    signals: ['SIGTERM', 'SIGINT'],
    timeout: config.shutdownTimeoutMs,
    useExit0: true,
    healthChecks: {
      verbatim: true,
      // Liveness is the process and its event loop only: a dependency outage must not restart it.
      '/health/live': async () => ({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) }),
      '/health/ready': readiness,
    },
    onSignal: async () => {
      shutdown.abort();
      await Promise.allSettled([queue.close(), mongo.close()]);
      redis.disconnect();
    },
    onShutdown: async () => {
      await tracing.shutdown();
      logger.info('health stopped');
      logger.flush();
    },
    logger: (msg, err) => logger.warn({ err }, msg),
  });

  await new Promise<void>((resolve) => server.listen(config.healthPort, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.healthPort;
  logger.info({ port }, `health listening on http://127.0.0.1:${port}`);
  signalReady();
  // Not awaited: the probes report MongoDB down until it answers.
  openMongo(mongo, config.mongoUrl, {
    timeoutMs: config.healthTimeoutMs,
    appName: 'orders-health',
    logger,
    signal: shutdown.signal,
  }).catch(() => undefined);
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(
      `health: ${err.message}\nFix the environment variables above (see README, "Configuration").\n`,
    );
    process.exit(78);
  }
  process.stderr.write(`health: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
