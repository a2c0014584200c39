// First: starts tracing (when configured) before the modules it instruments load.
import { profiling, tracing } from './instrument.js';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { createTerminus } from '@godaddy/terminus';
import {
  createDependencyChecks,
  createLogger,
  createMetricsRegistry,
  createMongoConnection,
  createOrdersQueue,
  createRedisConnection,
  installProcessHandlers,
  listen,
  loadConfig,
  openMongo,
  readBreakerReport,
  runMain,
  signalReady,
} from '#common';
import { createQueueCheck } from './checks/queue-check.js';
import { createReadinessCheck, type ReadinessResult } from './checks/readiness.js';
import { registerHealthMetrics } from './health-metrics.js';
import { createHealthSnapshot } from './health-snapshot.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Echoed request text (method, path) is cut short: a long path must not come back whole. */
function truncate(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger({
    service: 'health',
    level: config.logLevel,
    pretty: config.logPretty || process.stdout.isTTY === true,
  });
  installProcessHandlers({ logger });

  const mongo = createMongoConnection();
  const redis = createRedisConnection(config.redis, {
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
  const snapshot = createHealthSnapshot({
    checks,
    queueReport,
    paymentBreaker: () => readBreakerReport(redis, config.queuePrefix),
  });
  registerHealthMetrics({ registry, snapshot });

  // Terminus serves no probe here: it merged every check's result into one shared object, so one
  // probe's body showed another's stale state. Each request below computes its own body.
  let shuttingDown = false;
  const probes: Record<string, () => Promise<{ status: number; body: unknown }>> = {
    // Liveness is the process and its event loop only: a dependency outage must not restart it.
    '/health/live': async () => ({ status: 200, body: { status: 'ok', uptimeSeconds: Math.round(process.uptime()) } }),
    '/health/ready': async () => {
      if (shuttingDown) return { status: 503, body: { status: 'error', error: { shutdown: 'stopping' } } };
      const result: ReadinessResult = await readiness();
      return result.ready
        ? { status: 200, body: { status: 'ok', ...result.checks } }
        : { status: 503, body: { status: 'error', error: result.failing, details: result.failing } };
    },
    '/health': async () => {
      const { dependencies, queue: queueResult, paymentProvider } = await snapshot();
      const ok = dependencies.mongodb.status === 'up' && dependencies.redis.status === 'up';
      return {
        status: ok ? 200 : 503,
        body: { status: ok ? 'ok' : 'error', dependencies, queue: queueResult, paymentProvider },
      };
    },
  };
  const server = createServer((req, res) => {
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const send = (status: number, body: unknown, type = 'application/json', extra: Record<string, string> = {}) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, {
        'Content-Type': type,
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
        'X-Request-Id': requestId,
        ...extra,
      });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    const fail = (status: number, code: string, message: string, extra: Record<string, string> = {}) =>
      send(status, { error: { code, message, requestId, details: [] } }, 'application/json', extra);
    const path = (req.url ?? '/').split('?')[0];
    const probe = path === '/metrics' ? undefined : Object.hasOwn(probes, path) ? probes[path] : undefined;
    if (path !== '/metrics' && !probe) {
      fail(404, 'NOT_FOUND', `no route for ${truncate(req.method ?? '')} ${truncate(path)}`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      fail(405, 'METHOD_NOT_ALLOWED', `${path} answers GET and HEAD only`, { Allow: 'GET, HEAD' });
      return;
    }
    const answer = probe ? probe() : registry.metrics().then((text) => ({ status: 200, body: text }));
    answer.then(
      ({ status, body }) => send(status, body, probe ? 'application/json' : registry.contentType),
      (err: unknown) => {
        logger.error({ err }, 'health request failed');
        fail(500, 'INTERNAL_ERROR', 'internal error');
      },
    );
  });

  const shutdown = new AbortController();
  createTerminus(server, {
    signals: ['SIGTERM', 'SIGINT'],
    timeout: config.shutdownTimeoutMs,
    useExit0: true,
    beforeShutdown: async () => {
      shuttingDown = true;
    },
    onSignal: async () => {
      shutdown.abort();
      await Promise.allSettled([queue.close(), mongo.close()]);
      redis.disconnect();
    },
    onShutdown: async () => {
      await tracing.shutdown();
      await profiling.stop();
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
