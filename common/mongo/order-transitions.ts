import type { Model } from 'mongoose';
import type { Order } from '../domain/order.js';
import { buildTransition, type TransitionRequest } from '../domain/state-machine.js';
import { toOrder } from './order-mapper.js';
import type { OrderDocument } from './order-model.js';

/**
 * Performs one state transition as a single atomic conditional update: it succeeds only while the
 * order is in one of the expected states, so of many concurrent callers exactly one wins.
 * Resolves with the order after the move, or null when the order is missing or in another state.
 */
export async function transitionOrder(
  OrderModel: Model<OrderDocument>,
  id: string,
  request: TransitionRequest,
): Promise<Order | null> {
  const spec = buildTransition(request);
  // Straight to the driver: the filter and update are built here from validated values (no user
  // input, nothing for mongoose to cast or sanitize), and this is the hot path of every attempt.
  const doc = await OrderModel.collection.findOneAndUpdate({ _id: id, ...spec.filter } as never, spec.update, {
    returnDocument: 'after',
  });
  return doc ? toOrder(doc as unknown as OrderDocument) : null;
}

/** Reads one order as a plain object, or null. */
export async function findOrderById(OrderModel: Model<OrderDocument>, id: string): Promise<Order | null> {
  const doc = await OrderModel.findById(id).lean();
  return doc ? toOrder(doc as OrderDocument) : null;
}
