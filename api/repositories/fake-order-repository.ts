import { applyTransitionSpec, orderMoves, type Order, type TransitionRequest } from '#common';
import {
  DuplicateOrderError,
  type DeadOrderFilter,
  type ListOrdersQuery,
  type OrderRepository,
} from './order-repository.js';

/**
 * An in-memory {@link OrderRepository} for unit tests of the api's services: the same moves (through
 * the state machine's own spec), the same duplicate error, the same page orders. `orders` is the store.
 */
export function createFakeOrderRepository(seed: readonly Order[] = []) {
  const orders = new Map<string, Order>(seed.map((o) => [o.id, o]));
  const move = (id: string, request: TransitionRequest): Promise<Order | null> => {
    const order = orders.get(id);
    const moved = order ? applyTransitionSpec(order, request) : null;
    if (moved) orders.set(id, moved);
    return Promise.resolve(moved);
  };
  const page = (items: Order[], limit: number) => ({ items: items.slice(0, limit), hasMore: items.length > limit });
  const newestFirst = (by: (o: Order) => Date) => (a: Order, b: Order) =>
    by(b).getTime() - by(a).getTime() || b.id.localeCompare(a.id);

  const matchesDead = (f: DeadOrderFilter) => (o: Order) =>
    o.status === 'FAILED' &&
    (!f.orderIds || f.orderIds.includes(o.id)) &&
    (!f.customerId || o.customerId === f.customerId) &&
    (!f.failedReason || (o.lastError ?? '').toLowerCase().includes(f.failedReason.toLowerCase())) &&
    (!f.failedFrom || (o.failedAt !== null && o.failedAt >= f.failedFrom)) &&
    (!f.failedTo || (o.failedAt !== null && o.failedAt < f.failedTo));

  const repository: OrderRepository = {
    insert(order) {
      if (orders.has(order.id)) return Promise.reject(new DuplicateOrderError(order.id));
      orders.set(order.id, order);
      return Promise.resolve(order);
    },
    insertMany(batch) {
      return Promise.resolve(
        batch.map((order) => {
          if (orders.has(order.id)) return new DuplicateOrderError(order.id);
          orders.set(order.id, order);
          return order;
        }),
      );
    },
    findById: (id) => Promise.resolve(orders.get(id) ?? null),
    markEnqueued(ids, at) {
      for (const id of ids) {
        const order = orders.get(id);
        if (order && order.enqueuedAt === null) orders.set(id, { ...order, enqueuedAt: at });
      }
      return Promise.resolve();
    },
    cancel: (id) => move(id, orderMoves.cancel()),
    reprocess: (id, actor, why) => move(id, orderMoves.reprocess(actor, why)),
    listDead(query) {
      const after = query.after;
      const dead = [...orders.values()]
        .filter((o) => o.status === 'FAILED')
        .sort(newestFirst((o) => o.failedAt ?? new Date(0)))
        .filter(
          (o) =>
            !after ||
            (o.failedAt ?? new Date(0)) < after.failedAt ||
            ((o.failedAt ?? new Date(0)).getTime() === after.failedAt.getTime() && o.id < after.id),
        );
      return Promise.resolve(page(dead, query.limit));
    },
    findDead(filter, limit) {
      const dead = [...orders.values()].filter(matchesDead(filter)).sort(newestFirst((o) => o.failedAt ?? new Date(0)));
      return Promise.resolve(dead.slice(0, limit));
    },
    countDead: (filter) => Promise.resolve([...orders.values()].filter(matchesDead(filter)).length),
    list(query: ListOrdersQuery) {
      const after = query.after;
      const mine = [...orders.values()]
        .filter((o) => o.clientId === query.clientId)
        .filter((o) => !query.status || o.status === query.status)
        .filter((o) => !query.customerId || o.customerId === query.customerId)
        .sort(newestFirst((o) => o.createdAt))
        .filter(
          (o) =>
            !after ||
            o.createdAt < after.createdAt ||
            (o.createdAt.getTime() === after.createdAt.getTime() && o.id < after.id),
        );
      return Promise.resolve(page(mine, query.limit));
    },
  };
  return Object.assign(repository, { orders });
}
