import mongoose, { type Model } from 'mongoose';
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
  Order: Model<OrderDocument>,
  id: string,
  request: TransitionRequest,
): Promise<Order | null> {
  const spec = buildTransition(request);
  // The status filter is ours, not user input: trusted past sanitizeFilter.
  const doc = await Order.findOneAndUpdate({ _id: id, status: mongoose.trusted(spec.filter.status) }, spec.update, {
    returnDocument: 'after',
    lean: true,
  });
  return doc ? toOrder(doc as OrderDocument) : null;
}

/** Reads one order as a plain object, or null. */
export async function findOrderById(Order: Model<OrderDocument>, id: string): Promise<Order | null> {
  const doc = await Order.findById(id).lean();
  return doc ? toOrder(doc as OrderDocument) : null;
}
