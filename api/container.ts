import type Koa from 'koa';
import type { Router } from '@koa/router';
import type { Queue } from 'bullmq';
import type { RedisClient } from '#common';
import type { Connection } from 'mongoose';
import type { Registry } from 'prom-client';
import {
  boundCalls,
  createDependencyChecks,
  createMetricsRegistry,
  createMongoConnection,
  createBurstMeter,
  createOrdersQueue,
  createNotificationsQueue,
  createOrderEventMetrics,
  createOrderEventPublisher,
  createProfiler,
  createRedisConnection,
  ensureInventoryIndexes,
  ensureOrderIndexes,
  openMongo,
  registerInventoryModel,
  registerOrderModels,
  type Config,
  type DependencyChecks,
  type LogContext,
  type Logger,
  type OrderEvent,
  type OrderModels,
  type ProcessOrderJobData,
} from '#common';
import { buildApp } from './app.js';
import { createIntakeBatchMetrics } from './http/metrics-middleware.js';
import { createApiProbes } from './http/probes.js';
import { createEnqueueMarks } from './repositories/enqueue-marks.js';
import { createNotificationJobs } from './repositories/notification-jobs.js';
import { createInventoryRepository } from './repositories/inventory-repository.js';
import { createOrderJobs } from './repositories/order-jobs.js';
import { createDirectIntake, createGroupCommitIntake } from './repositories/order-intake.js';
import { createOrderRepository } from './repositories/order-repository.js';
import { createAuditRepository, registerAuditModel } from './repositories/audit-repository.js';
import { createAuditLog } from './services/audit-service.js';
import { createDlqService } from './services/dlq-service.js';
import { createProcessingService } from './services/processing-service.js';
import { createNotificationDlqService } from './services/notification-dlq-service.js';
import { createInventoryService } from './services/inventory-service.js';
import { createOrderService, type OrderService } from './services/order-service.js';
import { API_MONGO_TIMEOUT_MS, QUEUE_CALL_TIMEOUT_MS } from './settings.js';

export interface ApiContainer {
  readonly app: Koa;
  readonly routers: Router[];
  readonly orders: OrderService;
  readonly mongo: Connection;
  readonly models: OrderModels;
  readonly redis: RedisClient;
  readonly queue: Queue<ProcessOrderJobData>;
  /** The webhooks' queue (its failed set is their dead-letter queue). */
  readonly notifications: Queue<OrderEvent>;
  readonly registry: Registry;
  readonly checks: DependencyChecks;
  /** From now on readiness answers 503 (shutdown has begun), so load balancers stop sending traffic. */
  startDraining(): void;
  /** Opens MongoDB (retrying until it answers or `signal` aborts) and makes sure the indexes exist. */
  connect(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** The api's composition root: every dependency made once, from the config, and wired. */
export function createApiContainer(deps: {
  readonly config: Config;
  readonly logger: Logger;
  readonly logContext: LogContext;
}): ApiContainer {
  const { config, logger, logContext } = deps;
  const mongo = createMongoConnection();
  const models = registerOrderModels(mongo);
  const redis = createRedisConnection(config.redis, {
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
  // Bounded: MongoDB with the driver's one retry answers within the api's 503 bound, or the call fails.
  const orderRepository = boundCalls(createOrderRepository({ models }), API_MONGO_TIMEOUT_MS);
  // Under the 1 s the contract allows for a 202: a frozen Redis costs a POST at most this.
  const orderJobs = createOrderJobs({
    queue,
    timeoutMs: Math.min(QUEUE_CALL_TIMEOUT_MS, config.healthTimeoutMs),
    burst: config.fairShareKey === 'off' ? undefined : createBurstMeter(redis, config.queuePrefix),
  });
  const marks = createEnqueueMarks({ write: orderRepository.markEnqueued, logger });
  // Group commit at intake: concurrent POSTs share one insert and one add, each bounded like a lone one.
  const intake = config.intakeGroupCommit
    ? createGroupCommitIntake({
        repository: orderRepository,
        jobs: orderJobs,
        options: {
          maxBatch: config.intakeBatchMax,
          maxWaiting: config.intakeMaxWaiting,
          insertDeadlineMs: API_MONGO_TIMEOUT_MS,
          enqueueDeadlineMs: Math.min(QUEUE_CALL_TIMEOUT_MS, config.healthTimeoutMs),
          onBatch: createIntakeBatchMetrics(registry),
        },
      })
    : createDirectIntake({ repository: orderRepository, jobs: orderJobs });
  // Webhooks: the api publishes the `order.cancelled` events (the worker publishes the others).
  const notifications = createNotificationsQueue(redis, {
    prefix: config.queuePrefix,
    retryHorizonMs: config.webhook?.retryHorizonMs,
  });
  notifications.on('error', () => undefined); // reported once by the connection's listener above
  const eventResults = createOrderEventMetrics(registry); // served at zero with webhooks off
  const events = config.webhook
    ? createOrderEventPublisher({
        queue: notifications,
        logger: logger.child({ module: 'webhooks' }),
        onResult: eventResults,
        timeoutMs: QUEUE_CALL_TIMEOUT_MS,
      })
    : undefined;
  const orders = createOrderService({ repository: orderRepository, jobs: orderJobs, intake, marks, logger, events });
  const dlq = createDlqService({ repository: orderRepository, jobs: orderJobs, logger });
  const notificationDlq = createNotificationDlqService({
    jobs: createNotificationJobs({ queue: notifications, timeoutMs: QUEUE_CALL_TIMEOUT_MS }),
    logger: logger.child({ module: 'webhooks' }),
  });
  const Inventory = registerInventoryModel(mongo);
  const inventory = createInventoryService({
    inventory: boundCalls(createInventoryRepository({ Inventory }), API_MONGO_TIMEOUT_MS),
    logger,
  });
  // Bounded like the order path: with MongoDB away an audited action waits at most this long for its record.
  const auditRepository = boundCalls(
    createAuditRepository({ Audit: registerAuditModel(mongo, config.auditRetentionDays) }),
    API_MONGO_TIMEOUT_MS,
  );
  const audit = createAuditLog({ repository: auditRepository, logger });
  const processing = createProcessingService({
    queues: { orders: queue, notifications },
    audit,
    logger: logger.child({ module: 'processing' }),
    timeoutMs: QUEUE_CALL_TIMEOUT_MS,
  });
  const board =
    (config.bullBoardUser && config.bullBoardPassword) || config.boardAccounts.length > 0
      ? {
          queues: [queue, notifications],
          user: config.bullBoardUser,
          password: config.bullBoardPassword,
          accounts: config.boardAccounts,
        }
      : undefined;
  const checks = createDependencyChecks({ mongo, redis, timeoutMs: config.healthTimeoutMs });
  let draining = false;
  if (!config.apiAuth) logger.warn('API authentication is off: every caller is the public client (set API_KEYS)');
  const { app, routers } = buildApp({
    orders,
    dlq,
    notificationDlq,
    inventory,
    processing,
    audit,
    board,
    registry,
    profiler: createProfiler({ service: 'api', maxBytes: config.profileMaxBytes }),
    logger,
    logContext,
    bodyLimit: config.bodyLimit,
    auth: {
      enabled: config.apiAuth,
      keys: config.apiKeys,
      failureLimit: config.authFailureLimit,
      jwt: config.jwt,
    },
    probes: createApiProbes({ mongodb: checks.mongodb, draining: () => draining }),
    rateLimit: { redis, keyPrefix: `${config.queuePrefix}:ratelimit`, perMinute: config.rateLimitPerMinute },
    corsOrigins: config.corsOrigins,
  });
  return {
    app,
    routers,
    orders,
    mongo,
    models,
    redis,
    queue,
    notifications,
    registry,
    checks,
    startDraining() {
      draining = true;
    },
    async connect(signal) {
      await openMongo(mongo, config.mongoUrl, {
        timeoutMs: API_MONGO_TIMEOUT_MS,
        appName: 'orders-api',
        logger,
        signal,
      });
      await Promise.all([
        ensureOrderIndexes(models),
        ensureInventoryIndexes(Inventory),
        auditRepository.ensureIndexes(),
      ]);
    },
    async close() {
      // The last writes of intake, then the marks of `enqueuedAt`, go out before MongoDB closes (the
      // reconciler would find them anyway).
      await intake.drain();
      await marks.drain();
      await Promise.allSettled([queue.close(), notifications.close(), mongo.close()]);
      redis.disconnect();
    },
  };
}
