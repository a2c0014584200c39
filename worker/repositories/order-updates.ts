import { bulkWriteErrors } from '#common';
import type { Collection } from 'mongoose';
import { createMongoBatcher } from './mongo-batcher.js';

/** One conditional update of one order: it applies only while the order `id` also matches `filter`. */
export interface OrderUpdate {
  readonly id: string;
  readonly filter: Readonly<Record<string, unknown>>;
  readonly update: Readonly<Record<string, unknown>>;
}

/** Applies one {@link OrderUpdate}; true when the order matched (and so moved), false when it did not. */
export type ApplyOrderUpdate = (op: OrderUpdate) => Promise<boolean>;

/** One `updateOne` per update. */
export function singleOrderUpdates(collection: Collection): ApplyOrderUpdate {
  return async ({ id, filter, update }) => {
    // Straight to the driver: filters and updates are built by the domain from validated values.
    const result = await collection.updateOne({ _id: id, ...filter } as never, update as never);
    return result.matchedCount === 1;
  };
}

/** The most updates in one bulk write. */
const ORDER_UPDATE_BATCH_MAX = 256;

/**
 * Group commit of the worker's conditional updates of orders (WORKER_BATCH_WRITES; decision 0008):
 * the checkpoints and moves of concurrent jobs share one unordered bulk write, and each still learns
 * whether its own update matched.
 *
 * A bulk write reports how many updates matched, not which. So each update goes as an upsert on the
 * order's `_id`: one that matches applies as a plain update would; one whose order exists in another
 * state tries to insert a second document with that `_id` and fails alone with a duplicate key error
 * (code 11000), which is its "did not match". An order that does not exist at all would be inserted:
 * such a document (it has no `createdAt`, which every stored order has) is deleted in the same batch
 * before any caller hears back, and its update reported as not matched. Every outcome is as exact as
 * one `updateOne` per order; MongoDB 8.0's `bulkWrite` with per-operation results would make the
 * upsert unnecessary.
 */
export function batchedOrderUpdates(collection: Collection, { deadlineMs }: { deadlineMs: number }): ApplyOrderUpdate {
  const single = singleOrderUpdates(collection);
  async function run(ops: readonly OrderUpdate[]): Promise<Array<boolean | Error>> {
    // A batch of one is a plain updateOne: a bulk write of one costs the driver about half again as much.
    if (ops.length === 1) return [await single(ops[0])];
    const outcomes: Array<boolean | Error> = ops.map(() => true);
    let upserted: Record<number, unknown> = {};
    try {
      const result = await collection.bulkWrite(
        ops.map(({ id, filter, update }) => ({
          updateOne: { filter: { _id: id, ...filter } as never, update: update as never, upsert: true },
        })),
        { ordered: false },
      );
      upserted = result.upsertedIds;
    } catch (err) {
      const failed = bulkWriteErrors(err);
      // No per-update errors (network, pool, write concern): the batch as a whole has no answer.
      if (!failed || failed.size === 0) throw err;
      for (const [index, e] of failed) {
        outcomes[index] = e.code === 11000 ? false : new Error(e.errmsg ?? 'write error', { cause: err });
      }
      const { result } = err as { result?: { upsertedIds?: Record<number, unknown> } };
      upserted = result?.upsertedIds ?? {};
    }
    const strays = Object.keys(upserted).map(Number);
    if (strays.length > 0) {
      for (const index of strays) outcomes[index] = false;
      try {
        await collection.deleteMany({
          _id: { $in: strays.map((i) => ops[i].id) },
          createdAt: { $exists: false },
        } as never);
      } catch (err) {
        for (const index of strays) {
          outcomes[index] = new Error(
            `order ${ops[index].id} is missing and the update's stand-in document could not be removed`,
            {
              cause: err,
            },
          );
        }
      }
    }
    return outcomes;
  }

  const batcher = createMongoBatcher<OrderUpdate, boolean>({
    run,
    maxBatch: ORDER_UPDATE_BATCH_MAX,
    deadlineMs,
    what: 'order updates',
  });
  return (op) => batcher.submit(op);
}
