import type { OrderEventStore } from '../services/reconciler-service.js';

/**
 * An in-memory {@link OrderEventStore} for unit tests of the reconciler: `jobs` holds the event job ids
 * (`<orderId>-<status>`); `added` lists the ids added, in order, each only when it was not there.
 */
export function createFakeOrderEventStore(seed: readonly string[] = []) {
  const jobs = new Set<string>(seed);
  const added: string[] = [];
  const key = (o: { id: string; status: string }) => `${o.id}-${o.status.toLowerCase()}`;
  const store: OrderEventStore = {
    exists: (orders) => Promise.resolve(orders.map((o) => jobs.has(key(o)))),
    addMany(orders) {
      for (const o of orders) {
        if (!jobs.has(key(o))) {
          jobs.add(key(o));
          added.push(key(o));
        }
      }
      return Promise.resolve();
    },
  };
  return Object.assign(store, { jobs, added });
}
