import { createServer } from 'node:http';
import { createTerminus, HealthCheckError } from '@godaddy/terminus';
import {
  ConfigError,
  createDependencyChecks,
  createLogContext,
  createLogger,
  createMetricsRegistry,
  createMongoConnection,
  createOrdersQueue,
  createRedisConnection,
  ensureOrderIndexes,
  installProcessHandlers,
  loadConfig,
  openMongo,
  redactUrl,
  registerOrderModels,
  signalReady,
} from '#common';
import { buildApp } from './app.js';
import { createOrderQueue } from './repositories/order-queue.js';
import { createOrderRepository } from './repositories/order-repository.js';
import { createOrderService } from './services/order-service.js';

// The api answers 503 within this bound when MongoDB is away.
const MONGO_TIMEOUT_MS = 1500;

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logContext = createLogContext();
  const logger = createLogger({ service: 'api', level: config.logLevel, context: logContext });
  installProcessHandlers({ logger });

  const mongo = createMongoConnection();
  const models = registerOrderModels(mongo);
  const redis = createRedisConnection(config.redisUrl, {
    role: 'producer',
    commandTimeoutMs: config.healthTimeoutMs,
    connectionName: 'api',
  });
  let redisDown = false;
  redis.on('error', (err) => {
    if (!redisDown) logger.warn({ err }, 'Redis unreachable; new orders are stored and answered 202 until it returns');
    redisDown = true;
  });
  redis.on('ready', () => {
    if (redisDown) logger.info('Redis reachable again');
    redisDown = false;
  });
  const queue = createOrdersQueue(redis, { prefix: config.queuePrefix, ...config });
  queue.on('error', () => undefined); // reported once by the connection's listener above

  const registry = createMetricsRegistry('api');
  const orders = createOrderService({
    orders: createOrderRepository({ models }),
    queue: createOrderQueue({ queue, timeoutMs: config.healthTimeoutMs }),
    logger,
  });
  const { app } = buildApp({ orders, registry, logger, logContext, bodyLimit: config.bodyLimit });
  const checks = createDependencyChecks({ mongo, redis, timeoutMs: config.healthTimeoutMs });

  const server = createServer(app.callback());
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
        const mongodb = await checks.mongodb();
        if (mongodb.status === 'down') throw new HealthCheckError('not ready', { mongodb });
        return { mongodb };
      },
    },
    onSignal: async () => {
      shutdown.abort();
      logger.info('http server closed; closing connections');
      await Promise.allSettled([queue.close(), mongo.close()]);
      redis.disconnect();
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
  logger.info({ port, mongo: redactUrl(config.mongoUrl), redis: redactUrl(config.redisUrl) }, `api listening on http://127.0.0.1:${port}`);
  signalReady();

  try {
    await openMongo(mongo, config.mongoUrl, {
      timeoutMs: MONGO_TIMEOUT_MS,
      appName: 'orders-api',
      logger,
      signal: shutdown.signal,
    });
    await ensureOrderIndexes(models);
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
