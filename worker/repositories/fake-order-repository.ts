import { applyTransitionSpec, orderMoves, type Order, type TransitionRequest } from '#common';
import type { WorkerOrderRepository } from './order-repository.js';

/** A recorded business effect, as the `order_effects` collection holds it. */
export interface FakeEffect {
  readonly orderId: string;
  readonly totalCents: number;
  readonly currency: string;
  readonly jobAttempt: number;
  readonly jobId: string;
}

/**
 * An in-memory {@link WorkerOrderRepository} for unit tests of the worker's services: the same named
 * moves through the state machine's own spec; `orders` and `effects` are the store.
 */
export function createFakeWorkerOrderRepository(seed: readonly Order[] = []) {
  const orders = new Map<string, Order>(seed.map((o) => [o.id, o]));
  const effects = new Map<string, FakeEffect>();
  /** Cancelled orders whose `compensationDue` mark was cleared, in order. */
  const settled: string[] = [];
  const move = (id: string, request: TransitionRequest): Order | null => {
    const order = orders.get(id);
    const moved = order ? applyTransitionSpec(order, request) : null;
    if (moved) orders.set(id, moved);
    return moved;
  };
  const repository: WorkerOrderRepository = {
    findById: (id) => Promise.resolve(orders.get(id) ?? null),
    findByIds: (ids) =>
      Promise.resolve(new Map(ids.flatMap((id) => (orders.has(id) ? [[id, orders.get(id)!] as const] : [])))),
    claim: (id, jobAttempt) => Promise.resolve(move(id, orderMoves.claim(jobAttempt))),
    claimDead: (id, jobAttempt, by) => Promise.resolve(move(id, orderMoves.claimDead(jobAttempt, by))),
    complete: (id, at) => Promise.resolve(move(id, orderMoves.complete(at)) !== null),
    scheduleRetry: (id, error) => Promise.resolve(move(id, orderMoves.scheduleRetry(error))),
    reject: (id, reason, detail) => Promise.resolve(move(id, orderMoves.reject(reason, detail)) !== null),
    fail: (id, error) => Promise.resolve(move(id, orderMoves.fail(error))),
    compensationSettled(id) {
      if (orders.get(id)?.status === 'CANCELLED') settled.push(id);
      return Promise.resolve();
    },
    recordEffect(effect) {
      if (effects.has(effect.orderId)) return Promise.resolve(false);
      effects.set(effect.orderId, effect);
      return Promise.resolve(true);
    },
  };
  return Object.assign(repository, { orders, effects, settled });
}
