import type { RedisClient } from '#common';
import type { Connection } from 'mongoose';
import type { Registry } from 'prom-client';
import { ensureInventoryIndexes, registerInventoryModel, type Config, type Logger, type OrderModels } from '#common';
import { createBreakerBeacon } from './payments/breaker-beacon.js';
import { createPaymentProvider } from './payments/payment-provider.js';
import { createWorkerInventoryRepository } from './repositories/inventory-repository.js';
import { createOrderStepsRepository } from './repositories/order-steps-repository.js';
import type { ApplyOrderUpdate } from './repositories/order-updates.js';
import { createOrderSaga } from './saga/order-saga.js';
import { WORKER_MONGO_TIMEOUT_MS } from './settings.js';
import { createSagaMetrics, observeSagaSteps } from './saga/saga-metrics.js';
import type { OrderOutcomeObserver } from './services/order-processing-service.js';

/**
 * The order workflow's parts, made once for the worker (its composition root wires what this returns):
 * the saga over the MongoDB inventory and order records and the payment provider (simulated, or HTTP
 * behind a breaker), the workflow's metrics, and the beacon that publishes the breaker's state.
 */
export function createOrderWorkflow(deps: {
  readonly config: Config;
  readonly mongo: Connection;
  readonly models: Pick<OrderModels, 'Order'>;
  readonly connection: RedisClient;
  readonly registry: Registry;
  readonly workerId: string;
  readonly logger: Logger;
  /** How the saga's conditional updates of orders go out (the container's, shared with the order repository). */
  readonly orderUpdates?: ApplyOrderUpdate;
}) {
  const { config, logger } = deps;
  const Inventory = registerInventoryModel(deps.mongo);
  const payments = createPaymentProvider({ settings: config, registry: deps.registry, logger });
  const metrics = createSagaMetrics(deps.registry);
  const saga = createOrderSaga({
    inventory: createWorkerInventoryRepository({
      Inventory,
      bulk: config.workerBatchWrites,
      deadlineMs: WORKER_MONGO_TIMEOUT_MS,
    }),
    payments,
    orders: createOrderStepsRepository({ models: deps.models, updates: deps.orderUpdates }),
    logger,
  });
  const beacon = createBreakerBeacon({
    redis: deps.connection,
    prefix: config.queuePrefix,
    workerId: deps.workerId,
    state: () => payments.breakerState(),
    logger,
  });
  const observer: OrderOutcomeObserver = {
    processed: () => metrics.outcomes.inc({ outcome: 'processed', reason: '' }),
    rejected: (_order, reason) => metrics.outcomes.inc({ outcome: 'rejected', reason }),
    dead: () => metrics.outcomes.inc({ outcome: 'failed', reason: '' }),
    compensationFailed: () => metrics.compensations.inc({ step: 'any', result: 'failed' }),
  };
  logger.info(
    { provider: payments.kind, url: config.paymentProviderUrl },
    payments.kind === 'http' ? 'payments through the HTTP provider' : 'payments through the simulated provider',
  );
  return {
    saga,
    observer,
    /** Feeds the step-duration and compensation series (pass to the processor). */
    onStep: observeSagaSteps(metrics, 'run'),
    /** Creates the inventory collection's indexes; idempotent. */
    ensureIndexes: () => ensureInventoryIndexes(Inventory),
    start: () => beacon.start(),
    async close(): Promise<void> {
      await beacon.stop();
      payments.close();
    },
  };
}
