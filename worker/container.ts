import {
  assertPublicWebhookHost,
  createMetricsRegistry,
  createMongoConnection,
  createOrdersQueue,
  createProfiler,
  createRedisConnection,
  ensureOrderIndexes,
  openMongo,
  registerOrderModels,
  type Config,
  type LogContext,
  type Logger,
} from '#common';
import { createFairGate } from './fairness/fair-gate.js';
import { createFairShareMetrics } from './fairness/fair-metrics.js';
import { createFairShareStore } from './fairness/fair-share.js';
import { createOrderWebhooks } from './notifications/order-webhooks.js';
import { createOrderWorker } from './order-worker.js';
import { createOrderWorkflow } from './order-workflow.js';
import { createProfileRoute } from './profile-route.js';
import { createReconcileSchedule } from './reconcile-schedule.js';
import { createOrderEventStore } from './repositories/order-event-store.js';
import { createOrderJobStore } from './repositories/order-job-store.js';
import { batchedOrderReads, createWorkerOrderRepository } from './repositories/order-repository.js';
import { batchedOrderUpdates } from './repositories/order-updates.js';
import { createReconcileRepository } from './repositories/reconcile-repository.js';
import { combineObservers, createOrderProcessingService } from './services/order-processing-service.js';
import { createReconciler } from './services/reconciler-service.js';
import { LOCK_DURATION_MS, RECONCILE_EVENT_LOOKBACK_TICKS, WORKER_MONGO_TIMEOUT_MS } from './settings.js';
import { createWorkerMetrics } from './worker-metrics.js';

/** What the entry point and the tests hold of a running worker. */
export type WorkerContainer = ReturnType<typeof createWorkerContainer>;

/** The worker's composition root: every dependency made once, from the config, and wired. */
export function createWorkerContainer(deps: {
  readonly config: Config;
  readonly logger: Logger;
  readonly logContext: LogContext;
  readonly workerId: string;
}) {
  const { config, logger, logContext, workerId } = deps;
  const registry = createMetricsRegistry('worker');
  const metrics = createWorkerMetrics(registry);
  const mongo = createMongoConnection();
  const models = registerOrderModels(mongo);
  const connection = createRedisConnection(config.redis, { role: 'worker', connectionName: `worker:${workerId}` });
  connection.on('error', (err) => logger.warn({ err }, 'Redis connection error; BullMQ reconnects by itself'));

  // WORKER_BATCH_WRITES: the conditional updates of orders of concurrent jobs (the saga's checkpoints,
  // complete, reject) share bulk writes, one group commit for the workflow and the repository.
  const orderUpdates = config.workerBatchWrites
    ? batchedOrderUpdates(models.Order.collection, { deadlineMs: WORKER_MONGO_TIMEOUT_MS })
    : undefined;
  const workflow = createOrderWorkflow({ config, mongo, models, connection, registry, workerId, logger, orderUpdates });
  const repository = createWorkerOrderRepository({
    models,
    updates: orderUpdates,
    ...(config.workerBatchWrites && { effectBatch: { deadlineMs: WORKER_MONGO_TIMEOUT_MS } }),
  });
  const webhooks = createOrderWebhooks({
    config,
    connection,
    registry,
    workerId,
    logger,
    findById: batchedOrderReads(repository.findByIds, WORKER_MONGO_TIMEOUT_MS),
  });
  const endToEnd = {
    processed: (order: { processedAt: Date | null; createdAt: Date }) =>
      metrics.endToEnd.observe(((order.processedAt ?? new Date()).getTime() - order.createdAt.getTime()) / 1000),
  };
  const service = createOrderProcessingService({
    repository,
    saga: workflow.saga,
    logger,
    observer: combineObservers(workflow.observer, endToEnd, webhooks?.observer),
  });
  const fairGate =
    config.fairShareKey === 'off'
      ? undefined
      : createFairGate({
          store: createFairShareStore(connection, config.queuePrefix),
          workerId,
          concurrency: config.workerConcurrency,
          maxActive: config.maxActivePerCustomer,
          leaseMs: LOCK_DURATION_MS,
          metrics: createFairShareMetrics(registry),
          logger: logger.child({ module: 'fair-share' }),
        });
  const orders = createOrderWorker({
    connection,
    config,
    workerId,
    service,
    metrics,
    logContext,
    logger,
    onStep: workflow.onStep,
    fairGate,
  });
  const ordersQueue = createOrdersQueue(connection, { prefix: config.queuePrefix, ...config });
  const reconciler = createReconciler({
    repository: createReconcileRepository({ models }),
    onJobDead: service.onJobDead,
    jobs: createOrderJobStore({ queue: ordersQueue, redis: connection }),
    // Webhooks on: events lost between an order's end and their add are added again (see README, "Webhooks").
    events: webhooks ? createOrderEventStore({ queue: webhooks.queue, redis: connection }) : undefined,
    eventLookBackMs: RECONCILE_EVENT_LOOKBACK_TICKS * config.reconcileIntervalMs,
    logger: logger.child({ module: 'reconciler' }),
    graceMs: config.reconcileGraceMs,
  });
  const schedule = createReconcileSchedule({ connection, config, workerId, reconciler, metrics, logger });

  return {
    worker: orders.worker,
    service,
    reconciler,
    mongo,
    models,
    connection,
    registry,
    /** `POST /admin/profile` of the metrics port (admin API keys, as on the api). */
    profileRoute: createProfileRoute({
      profiler: createProfiler({ service: 'worker', maxBytes: config.profileMaxBytes }),
      auth: { enabled: config.apiAuth, keys: config.apiKeys },
      logger,
    }),
    /** Opens MongoDB (retrying until it answers or `signal` aborts) and makes sure the indexes exist. */
    async connect(signal?: AbortSignal): Promise<void> {
      await openMongo(mongo, config.mongoUrl, {
        timeoutMs: WORKER_MONGO_TIMEOUT_MS,
        appName: 'orders-worker',
        logger,
        signal,
      });
      await Promise.all([ensureOrderIndexes(models), workflow.ensureIndexes()]);
      // Production: the webhook host must resolve to public addresses (each connection checks again).
      if (config.webhook && config.nodeEnv === 'production') await assertPublicWebhookHost(config.webhook.url);
    },
    /** Starts taking jobs and ticking the reconciler; resolves once both are connected to Redis. */
    async start(): Promise<void> {
      await Promise.all([orders.start(), schedule.start(), webhooks?.delivery.start()]);
      workflow.start();
    },
    /** Stops within about `timeoutMs` (three tiers, see order-worker.ts); true when all jobs finished. */
    async close(timeoutMs: number): Promise<boolean> {
      const [finished] = await Promise.all([
        orders.close(timeoutMs),
        schedule.close(timeoutMs),
        webhooks?.delivery.close(timeoutMs),
      ]);
      await webhooks?.notifier.settle();
      await webhooks?.queue.close().catch(() => undefined);
      await workflow.close();
      await ordersQueue.close().catch(() => undefined);
      await mongo.close().catch(() => undefined);
      connection.disconnect();
      return finished;
    },
  };
}
