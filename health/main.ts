// First: starts tracing (when configured) before the modules it instruments load.
import { tracing } from './instrument.js';
import { createTerminus } from '@godaddy/terminus';
import {
  createDependencyChecks,
  createLogger,
  createMetricsRegistry,
  createMetricsServer,
  createMongoConnection,
  createOrdersQueue,
  createRedisConnection,
  installProcessHandlers,
  listen,
  loadConfig,
  runMain,
  openMongo,
  signalReady,
} from '#common';
import { createQueueCheck } from './checks/queue-check.js';
import { createReadinessCheck } from './checks/readiness.js';
import { registerHealthMetrics } from './health-metrics.js';
import { createHealthSnapshot } from './health-snapshot.js';

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
  const snapshot = createHealthSnapshot({ checks, queueReport });
  registerHealthMetrics({ registry, snapshot });

  const server = createMetricsServer(registry, (req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/health') {
      void snapshot().then(({ dependencies, queue }) => {
        const ok = dependencies.mongodb.status === 'up' && dependencies.redis.status === 'up';
        send(ok ? 200 : 503, { status: ok ? 'ok' : 'error', dependencies, queue });
      });
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

  const port = await listen(server, config.healthPort);
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

runMain('health', main);
