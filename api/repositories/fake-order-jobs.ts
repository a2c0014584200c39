import { QueueUnavailableError, type DeadJobInfo, type OrderJobs } from './order-jobs.js';

/** A job's state as BullMQ names it, or absent when the job is gone from Redis. */
type FakeJobState = 'waiting' | 'active' | 'delayed' | 'completed' | 'failed';

/**
 * An in-memory {@link OrderJobs} for unit tests: `jobs` maps order id to its job's state, `down`
 * makes every call fail as an unreachable Redis does, `calls` records what the service asked for.
 */
export function createFakeOrderJobs() {
  const jobs = new Map<string, FakeJobState>();
  const calls: string[] = [];
  const state = { down: false };
  const reachable = (what: string) => {
    calls.push(what);
    if (state.down) throw new QueueUnavailableError('Redis did not answer within 1 ms');
  };
  const fake: OrderJobs = {
    enqueue({ id: orderId }) {
      reachable(`enqueue ${orderId}`);
      if (!jobs.has(orderId)) jobs.set(orderId, 'waiting');
      return Promise.resolve();
    },
    enqueueMany(batch) {
      reachable(`enqueueMany ${batch.map((request) => request.order.id).join(',')}`);
      for (const { order } of batch) if (!jobs.has(order.id)) jobs.set(order.id, 'waiting');
      return Promise.resolve();
    },
    deadJob(orderId): Promise<DeadJobInfo | null> {
      reachable(`deadJob ${orderId}`);
      const jobState = jobs.get(orderId);
      if (!jobState) return Promise.resolve(null);
      return Promise.resolve({
        id: orderId,
        state: jobState,
        failedReason: jobState === 'failed' ? 'boom' : null,
        attemptsMade: jobState === 'failed' ? 3 : 0,
        finishedOn: null,
        lastFrame: null,
      });
    },
    revive({ id: orderId }) {
      reachable(`revive ${orderId}`);
      const jobState = jobs.get(orderId);
      jobs.set(orderId, 'waiting');
      if (jobState === 'failed') return Promise.resolve('retried' as const);
      if (jobState && jobState !== 'completed') {
        jobs.set(orderId, jobState);
        return Promise.resolve('already_queued' as const);
      }
      return Promise.resolve('added' as const);
    },
  };
  return Object.assign(fake, {
    jobs,
    calls,
    /** Makes Redis unreachable (true) or reachable again. */
    setDown(down: boolean) {
      state.down = down;
    },
  });
}
