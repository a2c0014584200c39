import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import {
  ConfigError,
  createLogContext,
  createLogger,
  createMetricsRegistry,
  createMongoConnection,
  createRedisConnection,
  ensureOrderIndexes,
  installProcessHandlers,
  loadConfig,
  openMongo,
  redactUrl,
  registerOrderModels,
  signalReady,
  withTimeout,
  ORDERS_QUEUE,
  type ProcessOrderJobData,
} from '#common';
import { createOrderProcessor } from './processors/order-processor.js';
import { createWorkerOrderRepository } from './repositories/order-repository.js';
import { createSimulatedStep } from './services/business-step.js';
import { createOrderProcessingService } from './services/order-processing-service.js';
import { createMetricsServer, createWorkerMetrics } from './worker-metrics.js';

/**
 * Lock and stall settings. A job's lock lasts LOCK_DURATION_MS and is renewed every half of it while
 * the worker lives; a worker that dies (SIGKILL) stops renewing, and the stalled check (every
 * STALLED_INTERVAL_MS, run by any live worker) hands the job back within about
 * LOCK_DURATION_MS + STALLED_INTERVAL_MS. A job that stalls more than MAX_STALLED_COUNT times fails.
 */
const LOCK_DURATION_MS = 10_000;
const STALLED_INTERVAL_MS = 5_000;
const MAX_STALLED_COUNT = 2;
// Workers may wait longer for MongoDB than the api: a failed attempt is retried anyway.
const MONGO_TIMEOUT_MS = 5000;

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const workerId = `${hostname()}:${process.pid}`;
  const logContext = createLogContext();
  const logger = createLogger({ service: 'worker', level: config.logLevel, context: logContext }).child({ workerId });

  const shutdownController = new AbortController();
  let worker: Worker<ProcessOrderJobData> | undefined;
  const metricsRegistry = createMetricsRegistry('worker');
  const metrics = createWorkerMetrics(metricsRegistry);
  const metricsServer = config.workerMetricsPort > 0 ? createMetricsServer(metricsRegistry) : undefined;
  const mongo = createMongoConnection();
  const models = registerOrderModels(mongo);
  const connection = createRedisConnection(config.redisUrl, { role: 'worker', connectionName: `worker:${workerId}` });
  connection.on('error', (err) => logger.warn({ err }, 'Redis connection error; BullMQ reconnects by itself'));

  async function shutdown(): Promise<void> {
    shutdownController.abort();
    let code = 0;
    if (worker) {
      try {
        // close() waits for active jobs and has no bound of its own.
        await withTimeout(worker.close(), config.shutdownTimeoutMs, 'active jobs did not finish in time');
      } catch (err) {
        logger.warn({ err }, 'forcing close; unfinished jobs will be handed back by the stalled check');
        await worker.close(true).catch(() => undefined);
      }
    }
    metricsServer?.close();
    await mongo.close().catch(() => undefined);
    connection.disconnect();
    logger.info({ code }, 'worker stopped');
    logger.flush();
    process.exit(code);
  }
  installProcessHandlers({ logger, onFirstSignal: () => void shutdown() });

  if (metricsServer) {
    const port = config.workerMetricsPort + config.instance;
    await new Promise<void>((resolve, reject) => {
      metricsServer.once('error', reject);
      metricsServer.listen(port, () => resolve());
    });
    logger.info({ port }, `worker metrics on http://127.0.0.1:${port}/metrics`);
  }

  try {
    await openMongo(mongo, config.mongoUrl, {
      timeoutMs: MONGO_TIMEOUT_MS,
      appName: 'orders-worker',
      logger,
      signal: shutdownController.signal,
    });
    await ensureOrderIndexes(models);
  } catch (err) {
    if (shutdownController.signal.aborted) return; // stopped before MongoDB answered; shutdown() exits
    throw err;
  }

  const service = createOrderProcessingService({
    orders: createWorkerOrderRepository({ models }),
    step: createSimulatedStep({ delayMs: config.processingDelayMs, failureRate: config.failureRate }),
    logger,
  });
  worker = new Worker<ProcessOrderJobData>(
    ORDERS_QUEUE,
    createOrderProcessor({ service, logger, logContext, metrics }),
    {
      connection,
      prefix: config.queuePrefix,
      concurrency: config.workerConcurrency,
      name: workerId,
      lockDuration: LOCK_DURATION_MS,
      stalledInterval: STALLED_INTERVAL_MS,
      maxStalledCount: MAX_STALLED_COUNT,
      autorun: false,
    },
  );
  worker.on('active', () => metrics.active.inc());
  worker.on('completed', () => metrics.active.dec());
  worker.on('failed', (job, err) => {
    if (!job) return;
    metrics.active.dec();
    // A job that stalled too often fails without its processor running: bring the order along.
    if (/stalled more than allowable limit/.test(err.message)) {
      logger.error({ orderId: job.data.orderId, jobId: job.id, err }, 'job failed after stalling; marking order FAILED');
      service.markDead(job.data.orderId, err.message).catch((e: unknown) => logger.error({ err: e }, 'could not mark order FAILED'));
    }
  });
  worker.on('error', (err) => logger.error({ err }, 'worker error'));
  void worker.run();
  await worker.waitUntilReady();
  logger.info(
    { concurrency: config.workerConcurrency, queue: ORDERS_QUEUE, prefix: config.queuePrefix, mongo: redactUrl(config.mongoUrl) },
    'worker running',
  );
  signalReady();
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`worker: ${err.message}\nFix the environment variables above (see README, "Configuration").\n`);
    process.exit(78);
  }
  process.stderr.write(`worker: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
