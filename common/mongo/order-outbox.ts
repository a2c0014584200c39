import type { Model } from 'mongoose';
import type { OrderDocument } from './order-model.js';

/**
 * The outbox's second half (DESIGN.md "Outbox reconciliation"): records that these orders' jobs are
 * in Redis, in one `updateMany` by `_id`. Only orders not yet marked are touched, so a late or
 * repeated mark never moves an earlier `enqueuedAt`.
 */
export async function markOrdersEnqueued(Order: Model<OrderDocument>, ids: readonly string[], at: Date): Promise<void> {
  if (ids.length === 0) return;
  // Straight to the driver: ids are ours (order ids the caller just stored or read), nothing to cast.
  await Order.collection.updateMany({ _id: { $in: [...ids] }, enqueuedAt: null } as never, {
    $set: { enqueuedAt: at },
  });
}
