import {
  createNotificationsQueue,
  createOrderEventMetrics,
  createOrderEventPublisher,
  type Config,
  type Logger,
  type Order,
} from '#common';
import type { RedisClient } from '#common';
import type { Registry } from 'prom-client';
import type { OrderOutcomeObserver } from '../services/order-processing-service.js';
import { createNotificationMetrics } from './notification-metrics.js';
import { createNotificationsWorker, createOrderEventNotifier, oldestUndeliveredAt } from './notifications-worker.js';

/**
 * Order events (with `WEBHOOK_URL` set): the producer the processing service's observer tells, the
 * delivery worker on the `notifications` queue, and their metrics. Undefined when webhooks are off.
 */
export function createOrderWebhooks(deps: {
  readonly config: Config;
  readonly connection: RedisClient;
  readonly registry: Registry;
  readonly workerId: string;
  readonly logger: Logger;
  /** Reads an ended order back for its event (the worker's is batched: see `batchedOrderReads`). */
  readonly findById: (orderId: string) => Promise<Order | null>;
}) {
  const { config, logger } = deps;
  // The series exist with webhooks off too (at zero), so dashboards and alerts always find them.
  const eventResults = createOrderEventMetrics(deps.registry);
  let oldest: () => Promise<number | undefined> = async () => undefined;
  const metrics = createNotificationMetrics(deps.registry, () => oldest());
  if (!config.webhook) return undefined;
  const queue = createNotificationsQueue(deps.connection, {
    prefix: config.queuePrefix,
    retryHorizonMs: config.webhook.retryHorizonMs,
  });
  queue.on('error', () => undefined); // the connection's listener reports Redis errors
  oldest = oldestUndeliveredAt(queue);
  const log = logger.child({ module: 'webhooks' });
  const publisher = createOrderEventPublisher({ queue, logger: log, onResult: eventResults });
  const notifier = createOrderEventNotifier({ findById: deps.findById, publisher, logger: log });
  /** Tells the notifier of every order the processing service brings to an end. */
  const observer: OrderOutcomeObserver = {
    processed: (order) => notifier.notify(order.id),
    rejected: (order) => notifier.notify(order.id),
    dead: (orderId) => notifier.notify(orderId),
  };
  return {
    queue,
    notifier,
    observer,
    delivery: createNotificationsWorker({
      connection: deps.connection,
      prefix: config.queuePrefix,
      workerId: deps.workerId,
      webhook: config.webhook,
      publicOnly: config.nodeEnv === 'production',
      metrics,
      logger: log,
    }),
  };
}
