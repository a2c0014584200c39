import {
  buildTransition,
  findOrderById,
  orderMoves,
  transitionOrder,
  type Order,
  type OrderDocument,
  type OrderModels,
  type RejectionReason,
  insertEach,
  toOrder,
} from '#common';
import type { Collection } from 'mongoose';
import { singleOrderUpdates, type ApplyOrderUpdate } from './order-updates.js';
import { createMongoBatcher } from './mongo-batcher.js';

export type WorkerOrderRepository = ReturnType<typeof createWorkerOrderRepository>;

/**
 * Data access for the worker: executes the order's named moves (common/domain/order-moves.ts), each
 * one atomic conditional update, and records effects.
 */
export function createWorkerOrderRepository({
  models,
  effectBatch,
  updates = singleOrderUpdates(models.Order.collection),
}: {
  readonly models: OrderModels;
  /**
   * How the moves that need no document back go out: `complete` and `reject` (batched with
   * WORKER_BATCH_WRITES, see order-updates.ts); default one updateOne each.
   */
  readonly updates?: ApplyOrderUpdate;
  /**
   * Group commit of effects (WORKER_BATCH_WRITES): the effects of concurrent jobs share one unordered
   * insert, each settled within `deadlineMs` (common/batching/batcher.ts; a lone one is written at
   * once). Absent: one insert per effect.
   */
  readonly effectBatch?: { readonly deadlineMs: number };
}) {
  const { Order: OrderModel, Effect } = models;
  const effects = effectBatch
    ? batchedEffects(Effect.collection, effectBatch.deadlineMs)
    : singleEffects(Effect.collection);
  return {
    findById: (id: string) => findOrderById(OrderModel, id),

    /**
     * The stored orders of `ids` (the missing ones left out), by id: one `find` on `_id`, straight to
     * the driver (the ids are ours; nothing to cast). A lone id is an equality, MongoDB's fastest plan
     * (IDHACK); several are one `$in` on the primary index.
     */
    async findByIds(ids: readonly string[]): Promise<Map<string, Order>> {
      if (ids.length === 0) return new Map();
      const filter = ids.length === 1 ? { _id: ids[0] } : { _id: { $in: [...ids] } };
      const docs = await OrderModel.collection.find(filter as never).toArray();
      return new Map(docs.map((doc) => [String(doc._id), toOrder(doc as unknown as OrderDocument)]));
    },

    /** {@link orderMoves.claim}; adds one to the order's claims (`attempts`). Null when it is in neither source. */
    claim: (id: string, jobAttempt: number): Promise<Order | null> =>
      transitionOrder(OrderModel, id, orderMoves.claim(jobAttempt)),

    /** {@link orderMoves.claimDead}: a dead order taken by the first attempt of a fresh series. */
    claimDead: (id: string, jobAttempt: number, by?: string): Promise<Order | null> =>
      transitionOrder(OrderModel, id, orderMoves.claimDead(jobAttempt, by)),

    /** {@link orderMoves.complete} at `at`; true when it moved (one updateOne, nothing read back). */
    complete: (id: string, at: Date = new Date()) => updates({ id, ...buildTransition(orderMoves.complete(at)) }),

    /** {@link orderMoves.scheduleRetry}. */
    scheduleRetry: (id: string, error: string) => transitionOrder(OrderModel, id, orderMoves.scheduleRetry(error)),

    /** {@link orderMoves.reject}: a business refusal (terminal); true when it moved. */
    reject: (id: string, reason: RejectionReason, detail: string) =>
      updates({ id, ...buildTransition(orderMoves.reject(reason, detail)) }),

    /** A cancelled order holds nothing any more: its `compensationDue` mark goes (see orderMoves.cancel). */
    async compensationSettled(id: string): Promise<void> {
      await OrderModel.collection.updateOne({ _id: id, status: 'CANCELLED' } as never, {
        $unset: { compensationDue: '' },
      });
    },

    /** {@link orderMoves.fail}: the dead letter. */
    fail: (id: string, error: string) => transitionOrder(OrderModel, id, orderMoves.fail(error)),

    /**
     * Records the business effect under the order id. A second run finds it already there and
     * records nothing: this is what makes effects exactly-once. True when this call recorded it.
     */
    recordEffect: (effect: EffectRecord): Promise<boolean> => effects(toEffectDocument(effect)),
  };
}

/** What the worker records of an order's sale (the `effects` collection, one per order). */
export interface EffectRecord {
  readonly orderId: string;
  readonly totalCents: number;
  readonly currency: string;
  readonly jobAttempt: number;
  readonly jobId: string;
}

function toEffectDocument(effect: EffectRecord) {
  return {
    _id: effect.orderId,
    totalCents: effect.totalCents,
    currency: effect.currency,
    // The stored field keeps its name: the job's attempt that produced the effect.
    attempt: effect.jobAttempt,
    jobId: effect.jobId,
    createdAt: new Date(),
  };
}

type EffectDocument = ReturnType<typeof toEffectDocument>;

/** One insert per effect: true when stored, false when the order's effect was already there. */
function singleEffects(collection: Collection) {
  return async (doc: EffectDocument): Promise<boolean> => {
    try {
      await collection.insertOne(doc as never);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 11000) return false;
      throw err;
    }
  };
}

/**
 * The effects of concurrent jobs in one unordered insert; each keeps its own outcome (stored, already
 * there, or its own error). Two attempts of one order in one batch (a stale one beside its successor)
 * are judged by the server like two inserts: the first is stored, the second finds it.
 */
function batchedEffects(collection: Collection, deadlineMs: number) {
  const batcher = createMongoBatcher<EffectDocument, boolean>({
    run: async (docs) =>
      (await insertEach(collection, docs)).map((outcome) =>
        outcome instanceof Error ? outcome : outcome === 'inserted',
      ),
    maxBatch: EFFECT_BATCH_MAX,
    deadlineMs,
    what: 'effects',
  });
  return (doc: EffectDocument): Promise<boolean> => batcher.submit(doc);
}

/** The most effects in one insert. */
const EFFECT_BATCH_MAX = 256;
/** The most orders read in one find. */
const ORDER_READ_BATCH_MAX = 100;

/**
 * One order at a time for callers, read in batches (group commit for reads: the orders asked for while
 * a read is in flight go out together in one `findByIds`; a lone one at once), each settled within
 * `deadlineMs`. The worker's order events read their ended orders through it.
 */
export function batchedOrderReads(
  findByIds: (ids: readonly string[]) => Promise<ReadonlyMap<string, Order>>,
  deadlineMs: number,
): (id: string) => Promise<Order | null> {
  const batcher = createMongoBatcher<string, Order | null>({
    run: async (ids) => {
      const found = await findByIds(ids);
      return ids.map((id) => found.get(id) ?? null);
    },
    maxBatch: ORDER_READ_BATCH_MAX,
    deadlineMs,
    what: 'order reads',
  });
  return (id) => batcher.submit(id);
}
