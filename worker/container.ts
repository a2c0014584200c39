import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import type { Registry } from 'prom-client';
import {
  createMetricsRegistry,
  createMongoConnection,
  createRedisConnection,
  ensureOrderIndexes,
  openMongo,
  registerOrderModels,
  withTimeout,
  ORDERS_QUEUE,
  type Config,
  type LogContext,
  type Logger,
  type OrderModels,
  type ProcessOrderJobData,
} from '#common';
import { createOrderProcessor } from './processors/order-processor.js';
import { createWorkerOrderRepository } from './repositories/order-repository.js';
import { createSimulatedStep } from './services/business-step.js';
import { createOrderProcessingService, type OrderProcessingService } from './services/order-processing-service.js';
import { createWorkerMetrics } from './worker-metrics.js';

/**
 * Lock and stall settings. A job's lock lasts LOCK_DURATION_MS and is renewed every half of it while
 * the worker lives; a worker that dies (SIGKILL) stops renewing, and the stalled check (every
 * STALLED_INTERVAL_MS, run by any live worker) hands the job back within about
 * LOCK_DURATION_MS + STALLED_INTERVAL_MS. A job that stalls more than MAX_STALLED_COUNT times fails.
 */
export const LOCK_DURATION_MS = 10_000;
export const STALLED_INTERVAL_MS = 5_000;
export const MAX_STALLED_COUNT = 2;
// Workers may wait longer for MongoDB than the api: a failed attempt is retried anyway.
export const WORKER_MONGO_TIMEOUT_MS = 5000;

export interface WorkerContainer {
  readonly worker: Worker<ProcessOrderJobData>;
  readonly service: OrderProcessingService;
  readonly mongo: Connection;
  readonly models: OrderModels;
  readonly connection: Redis;
  readonly registry: Registry;
  /** Opens MongoDB (retrying until it answers or `signal` aborts) and makes sure the indexes exist. */
  connect(signal?: AbortSignal): Promise<void>;
  /** Starts taking jobs; resolves once the worker is connected to Redis. */
  start(): Promise<void>;
  /**
   * Stops taking jobs and waits up to `timeoutMs` for active ones; past that, closes by force so the
   * unfinished jobs are handed back by the stalled check. Resolves true when all jobs finished.
   */
  close(timeoutMs: number): Promise<boolean>;
}

/** The worker's composition root. */
export function createWorkerContainer(deps: {
  readonly config: Config;
  readonly logger: Logger;
  readonly logContext: LogContext;
  readonly workerId: string;
}): WorkerContainer {
  const { config, logger, logContext, workerId } = deps;
  const registry = createMetricsRegistry('worker');
  const metrics = createWorkerMetrics(registry);
  const mongo = createMongoConnection();
  const models = registerOrderModels(mongo);
  const connection = createRedisConnection(config.redisUrl, { role: 'worker', connectionName: `worker:${workerId}` });
  connection.on('error', (err) => logger.warn({ err }, 'Redis connection error; BullMQ reconnects by itself'));

  const service = createOrderProcessingService({
    orders: createWorkerOrderRepository({ models }),
    step: createSimulatedStep({ delayMs: config.processingDelayMs, failureRate: config.failureRate }),
    logger,
  });
  const worker = new Worker<ProcessOrderJobData>(
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
    // A job that stalled too often fails without its processor running: bring the order along.
    if (/stalled more than allowable limit/.test(err.message)) {
      logger.error(
        { orderId: job.data.orderId, jobId: job.id, err },
        'job failed after stalling; marking order FAILED',
      );
      service
        .markDead(job.data.orderId, err.message)
        .catch((e: unknown) => logger.error({ err: e }, 'could not mark order FAILED'));
    } else {
      metrics.active.dec();
    }
  });
  worker.on('error', (err) => logger.error({ err }, 'worker error'));

  return {
    worker,
    service,
    mongo,
    models,
    connection,
    registry,
    async connect(signal) {
      await openMongo(mongo, config.mongoUrl, {
        timeoutMs: WORKER_MONGO_TIMEOUT_MS,
        appName: 'orders-worker',
        logger,
        signal,
      });
      await ensureOrderIndexes(models);
    },
    async start() {
      void worker.run().catch((err: unknown) => logger.error({ err }, 'worker loop stopped'));
      await worker.waitUntilReady();
    },
    async close(timeoutMs) {
      let finished = true;
      try {
        // close() waits for active jobs and has no bound of its own.
        await withTimeout(worker.close(), timeoutMs, `active jobs did not finish within ${timeoutMs} ms`);
      } catch (err) {
        finished = false;
        logger.warn({ err }, 'forcing close; unfinished jobs will be handed back by the stalled check');
        await worker.close(true).catch(() => undefined);
      }
      await mongo.close().catch(() => undefined);
      connection.disconnect();
      return finished;
    },
  };
}
