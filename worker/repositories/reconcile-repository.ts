import mongoose from 'mongoose';
import {
  QUERY_MAX_TIME_MS,
  markOrdersEnqueued,
  toOrder,
  type Order,
  type OrderDocument,
  type OrderModels,
} from '#common';

export type ReconcileRepository = ReturnType<typeof createReconcileRepository>;

/**
 * The filter of one page of a walk over (updatedAt, _id) upward: from `since` (or the beginning) when
 * the walk starts, past `after` when it goes on, always before `before`.
 */
function keysetRange(before: Date, after?: { updatedAt: Date; id: string }, since?: Date): Record<string, unknown> {
  if (after) {
    return {
      $or: [
        { updatedAt: mongoose.trusted({ $gt: after.updatedAt, $lt: before }) },
        { updatedAt: after.updatedAt, _id: mongoose.trusted({ $gt: after.id }) },
      ],
    };
  }
  return { updatedAt: mongoose.trusted(since ? { $gte: since, $lt: before } : { $lt: before }) };
}

/** The reconciler's reads and its one write, each served by an index of order-model.ts. */
export function createReconcileRepository({ models }: { readonly models: Pick<OrderModels, 'Order'> }) {
  const { Order: OrderModel } = models;

  /** One page of a walk over (`lead`, updatedAt, _id), in the order of the index that serves it. */
  async function walkPage(filter: Record<string, unknown>, lead: 'status' | 'compensationDue', limit: number) {
    const docs = await OrderModel.find(filter)
      .sort({ [lead]: 1, updatedAt: 1, _id: 1 })
      .limit(limit)
      .maxTimeMS(QUERY_MAX_TIME_MS)
      .lean();
    return (docs as OrderDocument[]).map(toOrder);
  }

  return {
    /** PENDING orders whose job was never confirmed in Redis, created before `before` (oldest first). */
    async findUnqueued(before: Date, limit: number): Promise<Order[]> {
      const docs = await OrderModel.find({
        status: 'PENDING',
        enqueuedAt: null,
        createdAt: mongoose.trusted({ $lt: before }),
      })
        .sort({ status: 1, enqueuedAt: 1, createdAt: 1 })
        .limit(limit)
        .maxTimeMS(QUERY_MAX_TIME_MS)
        .lean();
      return (docs as OrderDocument[]).map(toOrder);
    },

    /**
     * One page of in-flight orders (PENDING or PROCESSING) last changed before `before`, walking
     * (status, updatedAt, _id) upward from `after`.
     */
    async findInFlight(
      status: 'PENDING' | 'PROCESSING',
      before: Date,
      limit: number,
      after?: { updatedAt: Date; id: string },
    ): Promise<Order[]> {
      return walkPage({ status, ...keysetRange(before, after) }, 'status', limit);
    },

    /**
     * One page of orders that reached `status` (an ended one) with `since` ≤ updatedAt < `before`, walking
     * (status, updatedAt, _id) upward from `after`: the index of the in-flight walk serves it too.
     */
    async findEnded(
      status: 'PROCESSED' | 'REJECTED' | 'FAILED' | 'CANCELLED',
      since: Date,
      before: Date,
      limit: number,
      after?: { updatedAt: Date; id: string },
    ): Promise<Order[]> {
      return walkPage({ status, ...keysetRange(before, after, since) }, 'status', limit);
    },

    /**
     * One page of cancelled orders still marked `compensationDue` (see orderMoves.cancel), last changed
     * before `before`, walking (updatedAt, _id) upward from `after`; the sparse index holds only those.
     */
    async findCompensationDue(before: Date, limit: number, after?: { updatedAt: Date; id: string }): Promise<Order[]> {
      return walkPage({ compensationDue: true, ...keysetRange(before, after) }, 'compensationDue', limit);
    },

    /** Cancelled orders that hold nothing any more lose their `compensationDue` mark (one write). */
    async clearCompensationDue(ids: readonly string[]): Promise<void> {
      if (ids.length === 0) return;
      await OrderModel.collection.updateMany({ _id: { $in: [...ids] }, status: 'CANCELLED' } as never, {
        $unset: { compensationDue: '' },
      });
    },

    markEnqueuedMany: (ids: readonly string[], at: Date) => markOrdersEnqueued(OrderModel, ids, at),
  };
}
