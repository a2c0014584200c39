import {
  applyTransition,
  findOrderById,
  orderMoves,
  transitionOrder,
  type Order,
  type OrderModels,
  type RejectionReason,
} from '#common';

export type WorkerOrderRepository = ReturnType<typeof createWorkerOrderRepository>;

/**
 * Data access for the worker: executes the order's named moves (common/domain/order-moves.ts), each
 * one atomic conditional update, and records effects.
 */
export function createWorkerOrderRepository({ models }: { readonly models: OrderModels }) {
  const { Order: OrderModel, Effect } = models;
  return {
    findById: (id: string) => findOrderById(OrderModel, id),

    /** {@link orderMoves.claim}; adds one to the order's claims (`attempts`). Null when it is in neither source. */
    claim: (id: string, jobAttempt: number): Promise<Order | null> =>
      transitionOrder(OrderModel, id, orderMoves.claim(jobAttempt)),

    /** {@link orderMoves.claimDead}: a dead order taken by the first attempt of a fresh series. */
    claimDead: (id: string, jobAttempt: number, by?: string): Promise<Order | null> =>
      transitionOrder(OrderModel, id, orderMoves.claimDead(jobAttempt, by)),

    /** {@link orderMoves.complete} at `at`; true when it moved (one updateOne, nothing read back). */
    complete: (id: string, at: Date = new Date()) => applyTransition(OrderModel, id, orderMoves.complete(at)),

    /** {@link orderMoves.scheduleRetry}. */
    scheduleRetry: (id: string, error: string) => transitionOrder(OrderModel, id, orderMoves.scheduleRetry(error)),

    /** {@link orderMoves.reject}: a business refusal (terminal); true when it moved. */
    reject: (id: string, reason: RejectionReason, detail: string) =>
      applyTransition(OrderModel, id, orderMoves.reject(reason, detail)),

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
    async recordEffect(effect: {
      orderId: string;
      totalCents: number;
      currency: string;
      jobAttempt: number;
      jobId: string;
    }): Promise<boolean> {
      try {
        await Effect.collection.insertOne({
          _id: effect.orderId,
          totalCents: effect.totalCents,
          currency: effect.currency,
          // The stored field keeps its name: the job's attempt that produced the effect.
          attempt: effect.jobAttempt,
          jobId: effect.jobId,
          createdAt: new Date(),
        } as never);
        return true;
      } catch (err) {
        if ((err as { code?: number }).code === 11000) return false;
        throw err;
      }
    },
  };
}
