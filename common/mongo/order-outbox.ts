import type { Model } from 'mongoose';
import type { OrderDocument } from './order-model.js';

/**
 * The outbox's second half (docs/design.md "Outbox reconciliation"): records that these orders' jobs are
 * in Redis. One `update` command carrying one statement per order, each matched on `_id` (a point
 * lookup on the primary index however many orders the collection holds). Only orders not yet marked
 * are touched, so a late or repeated mark never moves an earlier `enqueuedAt`.
 */
export async function markOrdersEnqueued(
  OrderModel: Model<OrderDocument>,
  ids: readonly string[],
  at: Date,
): Promise<void> {
  if (ids.length === 0) return;
  // Straight to the driver: ids are ours (order ids the caller just stored or read), nothing to cast.
  await OrderModel.collection.bulkWrite(
    ids.map((id) => ({
      updateOne: { filter: { _id: id, enqueuedAt: null } as never, update: { $set: { enqueuedAt: at } } },
    })),
    { ordered: false },
  );
}
