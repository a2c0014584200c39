import { Counter, type Registry } from 'prom-client';
import type { Queue } from 'bullmq';
import type { Order } from '../domain/order.js';
import type { Logger } from '../logging/logger.js';
import {
  DELIVER_EVENT_JOB,
  buildOrderEvent,
  isEventfulStatus,
  orderEventId,
  type OrderEvent,
} from '../queues/notifications-queue.js';

/** Adds an order's event once it has reached PROCESSED, REJECTED, FAILED or CANCELLED. */
export interface OrderEventPublisher {
  /**
   * Best effort: never throws, never changes the order. A failure is logged and counted; the event is
   * lost unless the order's transition is published again (see README, "Webhooks").
   */
  publish(order: Order): Promise<void>;
}

/**
 * The publisher over the `notifications` queue. `onResult` counts what happened (`added`, `failed`,
 * `skipped` for a status without an event); it must not throw.
 */
export function createOrderEventPublisher(deps: {
  readonly queue: Pick<Queue<OrderEvent>, 'add'>;
  readonly logger: Logger;
  readonly onResult?: (result: 'added' | 'failed' | 'skipped') => void;
  /** Bounds a frozen Redis: the caller never waits longer than this for the event. */
  readonly timeoutMs?: number;
}): OrderEventPublisher {
  const { queue, logger } = deps;
  const timeoutMs = deps.timeoutMs ?? 2000;
  return {
    async publish(order) {
      const status = order.status;
      if (!isEventfulStatus(status)) {
        deps.onResult?.('skipped');
        return;
      }
      const webhookId = orderEventId(order.id, status);
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          queue.add(DELIVER_EVENT_JOB, buildOrderEvent({ ...order, status }), { jobId: webhookId }),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`queue did not answer in ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        deps.onResult?.('added');
      } catch (err) {
        logger.error({ err, orderId: order.id, webhookId }, 'order event could not be queued; it is not delivered');
        deps.onResult?.('failed');
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * `order_events_total{result}`: events added to the `notifications` queue (`added`) or lost because
 * Redis did not take them (`failed`). Pass the result to {@link createOrderEventPublisher}'s `onResult`.
 */
export function createOrderEventMetrics(registry: Registry): (result: 'added' | 'failed' | 'skipped') => void {
  const counter = new Counter({
    name: 'order_events_total',
    help: 'Order events queued for webhook delivery, by result: added, failed (lost: Redis did not take it), skipped',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  return (result) => counter.inc({ result });
}
