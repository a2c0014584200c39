import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import type { Registry } from 'prom-client';
import {
  createMetricsRegistry,
  createMongoConnection,
  createOrdersQueue,
  createRedisConnection,
  ensureOrderIndexes,
  openMongo,
  registerOrderModels,
  withTimeout,
  ORDERS_QUEUE,
  RECONCILE_JOB,
  RECONCILE_QUEUE,
  RECONCILE_SCHEDULER_ID,
  type Config,
  type LogContext,
  type Logger,
  type OrderModels,
  type ProcessOrderJobData,
} from '#common';
import { createOrderProcessor } from './processors/order-processor.js';
import { createWorkerOrderRepository } from './repositories/order-repository.js';
import { createReconcileQueue } from './repositories/reconcile-queue.js';
import { createReconcileRepository } from './repositories/reconcile-repository.js';
import { createReconciler, type Reconciler } from './services/reconciler-service.js';
import { createSimulatedStep } from './services/business-step.js';
import { createOrderProcessingService, type OrderProcessingService } from './services/order-processing-service.js';
import { createWorkerMetrics } from './worker-metrics.js';
import { LOCK_DURATION_MS, MAX_STALLED_COUNT, STALLED_INTERVAL_MS, WORKER_MONGO_TIMEOUT_MS } from './settings.js';


export interface WorkerContainer {
  readonly worker: Worker<ProcessOrderJobData>;
  readonly service: OrderProcessingService;
  readonly reconciler: Reconciler;
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
    onProcessed: (order) =>
      metrics.endToEnd.observe(((order.processedAt ?? new Date()).getTime() - order.createdAt.getTime()) / 1000),
  });
  const resetAttempts = async (job: { id?: string; attemptsMade: number }) => {
    await connection.hset(`${config.queuePrefix}:${ORDERS_QUEUE}:${job.id}`, 'atm', '0');
    job.attemptsMade = 0;
  };
  const worker = new Worker<ProcessOrderJobData>(
    ORDERS_QUEUE,
    createOrderProcessor({ service, logger, logContext, metrics, resetAttempts }),
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

  const ordersQueue = createOrdersQueue(connection, { prefix: config.queuePrefix, ...config });
  const reconciler = createReconciler({
    orders: createReconcileRepository({ models }),
    markDead: (orderId, reason) => service.markDead(orderId, reason),
    queue: createReconcileQueue({ queue: ordersQueue, redis: connection }),
    logger: logger.child({ module: 'reconciler' }),
    graceMs: config.reconcileGraceMs,
  });
  const reconcileQueue = new Queue(RECONCILE_QUEUE, { connection, prefix: config.queuePrefix });
  const reconcileWorker = new Worker(
    RECONCILE_QUEUE,
    async () => {
      const report = await reconciler.tick();
      metrics.reconcilerFindings.inc({ kind: 'unqueued' }, report.unqueued);
      metrics.reconcilerFindings.inc({ kind: 'missing_job' }, report.missingJob);
      metrics.reconcilerFindings.inc({ kind: 'failed_job' }, report.failedJob);
      return report;
    },
    { connection, prefix: config.queuePrefix, concurrency: 1, autorun: false, name: `${workerId}:reconciler` },
  );
  reconcileWorker.on('error', (err) => logger.error({ err }, 'reconciler worker error'));
  reconcileWorker.on('failed', (_job, err) => logger.error({ err }, 'reconcile tick failed; the next tick retries'));

  // The schedule lives in Redis, so a Redis that restarts empty loses it: every worker upserts it
  // at start and once per interval (idempotent), so it comes back within one interval by itself.
  let upserting = false;
  async function ensureSchedule(): Promise<void> {
    if (upserting) return;
    upserting = true;
    try {
      // One tick at a time across the fleet: a tick slower than the interval must not overlap
      // the next one on another worker (they would redo each other's work).
      await reconcileQueue.setGlobalConcurrency(1);
      await reconcileQueue.upsertJobScheduler(
        RECONCILE_SCHEDULER_ID,
        { every: config.reconcileIntervalMs },
        { name: RECONCILE_JOB, opts: { removeOnComplete: 20, removeOnFail: 50 } },
      );
    } catch (err) {
      logger.warn({ err }, 'could not upsert the reconcile schedule; retrying next interval');
    } finally {
      upserting = false;
    }
  }
  let scheduleTimer: NodeJS.Timeout | undefined;

  return {
    worker,
    service,
    reconciler,
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
      void reconcileWorker.run().catch((err: unknown) => logger.error({ err }, 'reconciler loop stopped'));
      await Promise.all([worker.waitUntilReady(), reconcileWorker.waitUntilReady()]);
      await ensureSchedule();
      scheduleTimer = setInterval(() => void ensureSchedule(), config.reconcileIntervalMs);
      scheduleTimer.unref();
    },
    async close(timeoutMs) {
      clearInterval(scheduleTimer);
      const reconcilerClosed = reconcileWorker.close().catch(() => undefined);
      let finished = true;
      try {
        // close() waits for active jobs and has no bound of its own.
        await withTimeout(worker.close(), timeoutMs, `active jobs did not finish within ${timeoutMs} ms`);
      } catch (err) {
        finished = false;
        // Past the bound: abort the running attempts; each hands its job back to the wait list.
        logger.warn({ err }, 'shutdown bound reached; handing unfinished jobs back to the queue');
        worker.cancelAllJobs('shutdown');
        await withTimeout(worker.close(), 3000, 'jobs did not hand back in time').catch(async () => {
          // Last resort: close by force; the stalled check hands the jobs back after the lock expires.
          await worker.close(true).catch(() => undefined);
        });
      }
      await withTimeout(reconcilerClosed, 2000, 'reconciler did not stop').catch(() => reconcileWorker.close(true));
      await Promise.allSettled([ordersQueue.close(), reconcileQueue.close()]);
      await mongo.close().catch(() => undefined);
      connection.disconnect();
      return finished;
    },
  };
}
