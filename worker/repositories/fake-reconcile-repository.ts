import type { Order } from '#common';
import type { ReconcileRepository } from './reconcile-repository.js';

/**
 * An in-memory {@link ReconcileRepository} for unit tests of the reconciler: the same filters and
 * orders as the MongoDB queries; `orders` is the store.
 */
export function createFakeReconcileRepository(seed: readonly Order[] = []) {
  const orders = new Map<string, Order>(seed.map((o) => [o.id, o]));
  const byTime = (by: (o: Order) => Date) => (a: Order, b: Order) =>
    by(a).getTime() - by(b).getTime() || a.id.localeCompare(b.id);
  /** Orders past a walk's cursor on (updatedAt, id); all of them when there is none. */
  const pastCursor = (after?: { updatedAt: Date; id: string }) => (o: Order) =>
    !after || o.updatedAt > after.updatedAt || (o.updatedAt.getTime() === after.updatedAt.getTime() && o.id > after.id);
  const repository: ReconcileRepository = {
    findUnqueued(before, limit) {
      const found = [...orders.values()]
        .filter((o) => o.status === 'PENDING' && o.enqueuedAt === null && o.createdAt < before)
        .sort(byTime((o) => o.createdAt));
      return Promise.resolve(found.slice(0, limit));
    },
    findInFlight(status, before, limit, after) {
      const found = [...orders.values()]
        .filter((o) => o.status === status && o.updatedAt < before)
        .filter(pastCursor(after))
        .sort(byTime((o) => o.updatedAt));
      return Promise.resolve(found.slice(0, limit));
    },
    findEnded(status, since, before, limit, after) {
      const found = [...orders.values()]
        .filter((o) => o.status === status && o.updatedAt >= since && o.updatedAt < before)
        .filter(pastCursor(after))
        .sort(byTime((o) => o.updatedAt));
      return Promise.resolve(found.slice(0, limit));
    },
    findCompensationDue(before, limit, after) {
      const found = [...orders.values()]
        .filter((o) => o.compensationDue === true && o.updatedAt < before)
        .filter(pastCursor(after))
        .sort(byTime((o) => o.updatedAt));
      return Promise.resolve(found.slice(0, limit));
    },
    clearCompensationDue(ids) {
      for (const id of ids) {
        const order = orders.get(id);
        if (order?.status === 'CANCELLED') orders.set(id, { ...order, compensationDue: undefined });
      }
      return Promise.resolve();
    },
    markEnqueuedMany(ids, at) {
      for (const id of ids) {
        const order = orders.get(id);
        if (order && order.enqueuedAt === null) orders.set(id, { ...order, enqueuedAt: at });
      }
      return Promise.resolve();
    },
  };
  return Object.assign(repository, { orders });
}
