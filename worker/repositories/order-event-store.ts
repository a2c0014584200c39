import type { Queue } from 'bullmq';
import type { RedisClient } from '#common';
import { DELIVER_EVENT_JOB, buildOrderEvent, orderEventId, type OrderEvent } from '#common';
import type { OrderEventStore } from '../services/reconciler-service.js';

/**
 * The reconciler's view of the `notifications` queue: which order events exist, and adding the missing
 * ones with the publisher's job id (`<orderId>-<status>`), so BullMQ ignores an event added meanwhile.
 */
export function createOrderEventStore({
  queue,
  redis,
}: {
  readonly queue: Queue<OrderEvent>;
  readonly redis: RedisClient;
}): OrderEventStore {
  return {
    async exists(orders) {
      if (orders.length === 0) return [];
      // One round trip: does each event's job hash exist (waiting, delayed, failed or kept as completed)?
      const pipeline = redis.pipeline();
      for (const o of orders) pipeline.exists(queue.toKey(orderEventId(o.id, o.status)));
      const results = (await pipeline.exec()) ?? [];
      for (const [err] of results) if (err) throw err;
      return results.map(([, found]) => found === 1);
    },
    async addMany(orders) {
      await queue.addBulk(
        orders.map((o) => ({
          name: DELIVER_EVENT_JOB,
          data: buildOrderEvent(o),
          opts: { jobId: orderEventId(o.id, o.status) },
        })),
      );
    },
  };
}
