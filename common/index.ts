/**
 * The public surface of `common`: what every process (api, worker, health) and the scripts share.
 * Import it as `#common`; never reach into its files. Deliberately small: a name is here because
 * something outside `common` uses it (the workflow's step types are the saga's contract); helpers
 * that only `common` needs stay unexported.
 */
export {
  loadConfig,
  ConfigError,
  type Config,
  type ApiKey,
  type JwtConfig,
  type WebhookConfig,
  type RedisTopology,
  hashTagOf,
} from './config/config.js';
export { createLogger, createLogContext, redactUrl, type Logger, type LogContext } from './logging/logger.js';
export {
  AppError,
  ERROR_CODES,
  STATUS_BY_CODE,
  isMongoUnavailable,
  isRedisUnavailable,
  type ErrorCode,
  type ErrorDetail,
} from './errors/app-error.js';
export {
  ORDER_STATUSES,
  TERMINAL_STATUSES,
  STEP_NAMES,
  REJECTION_REASONS,
  HISTORY_LIMIT,
  REASON_LIMIT,
  computeTotalCents,
  toOrderView,
  type Order,
  type OrderItem,
  type OrderStatus,
  type OrderView,
  type HistoryEntry,
  type NewOrderInput,
  type StepName,
  type StepCheckpoint,
  type StepCheckpoints,
  type RejectionReason,
} from './domain/order.js';
export {
  TRANSITIONS,
  canTransition,
  sourcesOf,
  buildTransition,
  applyTransitionSpec,
  truncateReason,
  type TransitionRequest,
} from './domain/state-machine.js';
export {
  orderMoves,
  reprocessedSinceLastFailure,
  DEAD_JOB_RETRIED_REASON,
  OPERATOR_NAME_PATTERN,
} from './domain/order-moves.js';
export { newOrder } from './domain/new-order.js';
export {
  ORDER_PRIORITIES,
  DEFAULT_PRIORITY,
  NOT_BEFORE_MAX_PAST_MS,
  NOT_BEFORE_MAX_AHEAD_MS,
  notBeforeProblem,
  scheduleDelayMs,
  type OrderPriority,
} from './domain/scheduling.js';
export {
  PUBLIC_SCOPE,
  IDEMPOTENCY_KEY,
  ORDER_ID_PATTERN,
  orderIdFromKey,
  randomOrderId,
  isOrderId,
  canonicalJson,
  fingerprint,
} from './domain/identity.js';
export {
  boundCalls,
  createMongoConnection,
  openMongo,
  MongoDeadlineError,
  MongoBatchUnavailableError,
  QUERY_MAX_TIME_MS,
} from './mongo/connection.js';
export { bulkWriteErrors, insertEach, type BulkOperationError, type InsertOutcome } from './mongo/insert-each.js';
export {
  registerOrderModels,
  ensureOrderIndexes,
  type OrderModels,
  type OrderDocument,
  type EffectDocument,
} from './mongo/order-model.js';
export { toOrder } from './mongo/order-mapper.js';
export {
  registerInventoryModel,
  ensureInventoryIndexes,
  toStockLevel,
  type InventoryDocument,
  type InventoryHold,
  type StockLevel,
} from './mongo/inventory-model.js';
export { markOrdersEnqueued } from './mongo/order-outbox.js';
export { createRedisConnection, describeRedisTopology, redisMasters, type RedisClient } from './redis/connection.js';
export {
  ORDERS_QUEUE,
  PROCESS_ORDER_JOB,
  RECONCILE_QUEUE,
  RECONCILE_SCHEDULER_ID,
  RECONCILE_JOB,
  orderJobOptions,
  createOrdersQueue,
  type BoardRetryMark,
  orderJob,
  JOB_PLACEMENT,
  type OrderJob,
  type ProcessOrderJobData,
} from './queues/orders-queue.js';
export { createBurstMeter, BURST_PER_MINUTE, type BurstMeter } from './queues/burst-meter.js';
export { addJobs, type JobAdder, type JobToAdd } from './queues/add-jobs.js';
export {
  NOTIFICATIONS_QUEUE,
  DELIVER_EVENT_JOB,
  ORDER_EVENT_TYPES,
  WEBHOOK_RETRIES,
  orderEventId,
  buildOrderEvent,
  isEventfulStatus,
  webhookRetrySchedule,
  notificationJobOptions,
  createNotificationsQueue,
  type OrderEvent,
  type OrderEventType,
  type EventfulStatus,
  type WebhookRetrySchedule,
} from './queues/notifications-queue.js';
export {
  createOrderEventPublisher,
  createOrderEventMetrics,
  type OrderEventPublisher,
} from './notifications/order-events.js';
export { isNonPublicAddress, webhookUrlProblems, assertPublicWebhookHost } from './config/webhook-url.js';
export { createApiKeyMatcher } from './auth/api-key-matcher.js';
export {
  createProfiler,
  parseProfileRequest,
  profileDisposition,
  profileQuerySchema,
  PROFILE_SECONDS,
  type Profiler,
  type ProfileKind,
  type RecordedProfile,
} from './profiling/profiler.js';
export {
  BOARD_ROLES,
  hashBoardPassword,
  verifyBoardPassword,
  type BoardAccount,
  type BoardRole,
} from './config/board-accounts.js';
export { createMetricsRegistry } from './metrics/registry.js';
export { createMetricsServer, sendAppError, type MetricsServerRoute } from './metrics/metrics-server.js';
export {
  startTracing,
  injectTraceContext,
  extractTraceContext,
  type Tracing,
  type TracingOptions,
} from './telemetry/tracing.js';
export { installProcessHandlers, withTimeout, signalReady, runMain, listen } from './lifecycle/process.js';
export { transitionOrder, findOrderById } from './mongo/order-transitions.js';
export { createDependencyChecks, type DependencyChecks, type CheckResult } from './health/dependency-checks.js';
export {
  paymentBreakerKey,
  publishBreakerState,
  withdrawBreakerState,
  readBreakerReport,
  BREAKER_REPORT_STALE_MS,
  type BreakerReport,
  type PublishedBreakerState,
} from './health/payment-breaker.js';
export {
  buildStepRecord,
  holdsEffects,
  CHECKPOINT_STATUSES,
  COMPENSATION_STATUSES,
  type StepRecordRequest,
} from './domain/step-records.js';
export { createBatcher, type Batcher, type BatcherOptions } from './batching/batcher.js';
