import type { Queue } from 'bullmq';
import type { RedisClient } from '#common';
import { orderJob, type ProcessOrderJobData } from '#common';
import type { OrderJobStore } from '../services/reconciler-service.js';

/**
 * The reconciler's view of the `orders` queue's jobs: add a job by order id, check which jobs exist,
 * retry a dead one with its attempts reset (BullMQ's public `Job.retry`).
 */
export function createOrderJobStore({
  queue,
  redis,
}: {
  readonly queue: Queue<ProcessOrderJobData>;
  readonly redis: RedisClient;
}): OrderJobStore {
  return {
    async enqueueMany(orders) {
      // As the api adds them: the same priority, and what is left of each order's schedule.
      const now = new Date();
      await queue.addBulk(orders.map((o) => orderJob(o, { now })));
    },
    async jobStates(ids) {
      if (ids.length === 0) return [];
      // One round trip: for each id, does its job hash exist, and is it in the failed set?
      const pipeline = redis.pipeline();
      const failedKey = queue.toKey('failed');
      for (const id of ids) pipeline.exists(queue.toKey(id)).zscore(failedKey, id);
      const results = (await pipeline.exec()) ?? [];
      for (const [err] of results) if (err) throw err;
      return ids.map((_, i) => {
        if (results[2 * i][1] !== 1) return 'missing';
        return results[2 * i + 1][1] !== null ? 'failed' : 'queued';
      });
    },

    async retryFailed(orderId) {
      const job = await queue.getJob(orderId);
      if (job && (await job.getState()) === 'failed') {
        await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      }
    },
  };
}
