import { Counter, type Registry } from 'prom-client';
import type { Order } from '../domain/order.js';
import type { Logger } from '../logging/logger.js';
import { createBatcher } from '../batching/batcher.js';
import { addJobs, type JobAdder, type JobToAdd } from '../queues/add-jobs.js';
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

/** The most events in one add, and the most waiting for Redis before one more is refused (lost). */
const EVENT_BATCH_MAX = 100;
const EVENT_MAX_WAITING = 10_000;

/**
 * The publisher over the `notifications` queue. `onResult` counts what happened (`added`, `failed`,
 * `skipped` for a status without an event); it must not throw.
 *
 * Group commit, as at intake (common/batching/batcher.ts): the events of concurrent publishes share
 * one `addBulk` (a lone event is a plain `add`, at once). Each event is settled within `timeoutMs`,
 * waiting or in flight; at most 10 000 wait while Redis is slow or away, and one more is refused, so
 * a frozen Redis costs events (logged and counted `failed`, as a failed add was), never memory.
 */
export function createOrderEventPublisher(deps: {
  readonly queue: JobAdder<OrderEvent>;
  readonly logger: Logger;
  readonly onResult?: (result: 'added' | 'failed' | 'skipped') => void;
  /** Bounds a frozen Redis: the caller never waits longer than this for the event. */
  readonly timeoutMs?: number;
}): OrderEventPublisher {
  const { queue, logger } = deps;
  const adds = createBatcher<JobToAdd<OrderEvent>, void>({
    run: async (jobs) => {
      await addJobs(queue, jobs);
      return jobs.map(() => undefined);
    },
    maxBatch: EVENT_BATCH_MAX,
    maxWaiting: EVENT_MAX_WAITING,
    deadlineMs: deps.timeoutMs ?? 2000,
    gatherTurn: true,
    overloaded: (waiting) => new Error(`${waiting} order events already wait for Redis`),
    timedOut: (ms) => new Error(`queue did not answer in ${ms} ms`),
  });
  return {
    async publish(order) {
      const status = order.status;
      if (!isEventfulStatus(status)) {
        deps.onResult?.('skipped');
        return;
      }
      const webhookId = orderEventId(order.id, status);
      try {
        await adds.submit({
          name: DELIVER_EVENT_JOB,
          data: buildOrderEvent({ ...order, status }),
          opts: { jobId: webhookId },
        });
        deps.onResult?.('added');
      } catch (err) {
        logger.error({ err, orderId: order.id, webhookId }, 'order event could not be queued; it is not delivered');
        deps.onResult?.('failed');
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
