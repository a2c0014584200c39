import type { JobPresence, OrderJobStore } from '../services/reconciler-service.js';

/**
 * An in-memory {@link OrderJobStore} for unit tests of the reconciler: `jobs` maps order id to where
 * its job stands (absent: missing from Redis); `retried` lists the dead jobs retried.
 */
export function createFakeOrderJobStore(seed: Readonly<Record<string, Exclude<JobPresence, 'missing'>>> = {}) {
  const jobs = new Map<string, Exclude<JobPresence, 'missing'>>(Object.entries(seed));
  const retried: string[] = [];
  const store: OrderJobStore = {
    enqueueMany(orders) {
      for (const o of orders) if (!jobs.has(o.id)) jobs.set(o.id, 'queued');
      return Promise.resolve();
    },
    jobStates: (ids) => Promise.resolve(ids.map((id) => jobs.get(id) ?? 'missing')),
    retryFailed(orderId) {
      if (jobs.get(orderId) === 'failed') {
        jobs.set(orderId, 'queued');
        retried.push(orderId);
      }
      return Promise.resolve();
    },
  };
  return Object.assign(store, { jobs, retried });
}
