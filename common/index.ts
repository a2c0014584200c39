/**
 * The public surface of `common`: what every process (api, worker, health) and the scripts share.
 * Import it as `#common`; never reach into its files.
 */
export { loadConfig, ConfigError, type Config, type ApiKey, type JwtConfig } from './config/config.js';
export {
  createLogger,
  createLogContext,
  redactUrl,
  type Logger,
  type LogContext,
  type LogFields,
  type LoggerOptions,
} from './logging/logger.js';
export {
  AppError,
  ERROR_CODES,
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
  truncateReason,
  type TransitionRequest,
  type TransitionSpec,
} from './domain/state-machine.js';
export {
  PUBLIC_SCOPE,
  IDEMPOTENCY_KEY,
  orderIdFromKey,
  randomOrderId,
  isOrderId,
  canonicalJson,
  fingerprint,
} from './domain/identity.js';
export {
  createMongoConnection,
  openMongo,
  pingMongo,
  QUERY_MAX_TIME_MS,
  type MongoConnectionOptions,
} from './mongo/connection.js';
export {
  registerOrderModels,
  ensureOrderIndexes,
  type OrderModels,
  type OrderDocument,
  type EffectDocument,
} from './mongo/order-model.js';
export { toOrder } from './mongo/order-mapper.js';
export { markOrdersEnqueued } from './mongo/order-outbox.js';
export {
  createRedisConnection,
  redisOptions,
  pingRedis,
  readEvictionPolicy,
  type RedisRole,
  type RedisConnectionOptions,
} from './redis/connection.js';
export {
  ORDERS_QUEUE,
  PROCESS_ORDER_JOB,
  RECONCILE_QUEUE,
  RECONCILE_SCHEDULER_ID,
  RECONCILE_JOB,
  orderJobOptions,
  createOrdersQueue,
  type ProcessOrderJobData,
  type JobPolicy,
} from './queues/orders-queue.js';
export { createMetricsRegistry } from './metrics/registry.js';
export {
  startTracing,
  injectTraceContext,
  extractTraceContext,
  type Tracing,
  type TracingOptions,
} from './telemetry/tracing.js';
export { installProcessHandlers, withTimeout, signalReady } from './lifecycle/process.js';
export { transitionOrder, applyTransition, findOrderById } from './mongo/order-transitions.js';
export { createDependencyChecks, type DependencyChecks, type CheckResult } from './health/dependency-checks.js';
