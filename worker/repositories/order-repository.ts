import { applyTransition, findOrderById, transitionOrder, type Order, type OrderModels } from '#common';

export type WorkerOrderRepository = ReturnType<typeof createWorkerOrderRepository>;

/** Data access for the worker: the moves of an attempt, each one atomic conditional update. */
export function createWorkerOrderRepository({ models }: { readonly models: OrderModels }) {
  const { Order, Effect } = models;
  return {
    findById: (id: string) => findOrderById(Order, id),

    /**
     * Claims the order for an attempt: PENDING, FAILED (a retried dead job) or PROCESSING (an earlier
     * attempt crashed or stalled) → PROCESSING, adding one to `attempts`. Null when it is in none of those.
     */
    claim: (id: string, attempt: number, reason?: string): Promise<Order | null> =>
      transitionOrder(Order, id, { to: 'PROCESSING', from: ['PENDING', 'FAILED', 'PROCESSING'], attempt, reason }),

    /** PROCESSING → PROCESSED at `at`; true when it moved (one updateOne, nothing read back). */
    complete: (id: string, at: Date = new Date()) =>
      applyTransition(Order, id, { to: 'PROCESSED', from: ['PROCESSING'], at }),

    /** An attempt failed and BullMQ will retry: back to PENDING with the error recorded. */
    scheduleRetry: (id: string, error: string) =>
      transitionOrder(Order, id, { to: 'PENDING', from: ['PROCESSING'], reason: error, set: { lastError: error } }),

    /** Attempts exhausted or unrecoverable: FAILED, the dead letter. */
    fail: (id: string, error: string) =>
      transitionOrder(Order, id, { to: 'FAILED', from: ['PROCESSING'], reason: error, set: { lastError: error } }),

    /**
     * Records the business effect under the order id. A second run finds it already there and
     * records nothing: this is what makes effects exactly-once. True when this call recorded it.
     */
    async recordEffect(effect: {
      orderId: string;
      totalCents: number;
      currency: string;
      attempt: number;
      jobId: string;
    }): Promise<boolean> {
      try {
        await Effect.collection.insertOne({
          _id: effect.orderId,
          totalCents: effect.totalCents,
          currency: effect.currency,
          attempt: effect.attempt,
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
