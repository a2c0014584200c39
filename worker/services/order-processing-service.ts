import { TERMINAL_STATUSES, truncateReason, type Logger, type Order } from '#common';
import type { WorkerOrderRepository } from '../repositories/order-repository.js';
import type { BusinessStep } from './business-step.js';

/** The order a job names does not exist: retrying cannot help. */
export class OrderNotFoundError extends Error {
  constructor(orderId: string) {
    super(`order ${orderId} does not exist`);
    this.name = 'OrderNotFoundError';
  }
}

export interface AttemptInput {
  readonly orderId: string;
  readonly jobId: string;
  /** 1-based number of this attempt. */
  readonly attempt: number;
  /** True when no retry follows a failure of this attempt. */
  readonly isLastAttempt: boolean;
  /** Recorded on the claim's history entry (e.g. why a dead order runs again). */
  readonly claimReason?: string;
  /** Aborted when the worker hands the job back unfinished; the order is then left for the next claim. */
  readonly signal?: AbortSignal;
}

/** The attempt was abandoned (shutdown): the order stays PROCESSING and the next claim takes it over. */
export class AttemptAbandonedError extends Error {
  constructor(orderId: string) {
    super(`attempt on ${orderId} abandoned; the job goes back to the queue`);
    this.name = 'AttemptAbandonedError';
  }
}

/** How an attempt ended when it did not throw. */
export type AttemptOutcome = 'completed' | 'noop_terminal';

export type OrderProcessingService = ReturnType<typeof createOrderProcessingService>;

/**
 * One attempt at an order: claim it (atomic), run the business step, record its effect under the
 * order id (exactly once), mark it PROCESSED. A failure moves it back to PENDING when a retry
 * follows, else to FAILED, and is rethrown so the queue retries or dead-letters the job.
 */
export function createOrderProcessingService(deps: {
  readonly orders: WorkerOrderRepository;
  readonly step: BusinessStep;
  readonly logger: Logger;
  /** Told of each order this service moves to PROCESSED (the worker measures end-to-end latency with it). */
  readonly onProcessed?: (order: Order) => void;
}) {
  const { orders, step, logger, onProcessed } = deps;
  // An observer must never turn a finished order into a failed attempt.
  const notifyProcessed = (order: Order) => {
    try {
      onProcessed?.(order);
    } catch (err) {
      logger.warn({ err }, 'onProcessed observer failed');
    }
  };
  return {
    async attempt(input: AttemptInput): Promise<AttemptOutcome> {
      const order = await orders.claim(input.orderId, input.attempt, input.claimReason);
      if (!order) {
        const existing = await orders.findById(input.orderId);
        if (!existing) throw new OrderNotFoundError(input.orderId);
        if (TERMINAL_STATUSES.includes(existing.status)) {
          logger.info({ status: existing.status }, 'order already terminal; job completes as a no-op');
          return 'noop_terminal';
        }
        // Only PROCESSED/CANCELLED are outside the claim's sources; anything else is a bug worth a retry.
        throw new Error(`order ${input.orderId} could not be claimed from ${existing.status}`);
      }
      try {
        // The step's attempt is the order's own count of claims (docs/design.md's `attempts`), which keeps
        // growing across reprocessing; the job's counter starts again, and a reprocessed order must
        // not simply replay the failures of its first series.
        await step(order, order.attempts, input.signal);
        const recorded = await orders.recordEffect({
          orderId: order.id,
          totalCents: order.totalCents,
          currency: order.currency,
          attempt: input.attempt,
          jobId: input.jobId,
        });
        if (!recorded) logger.warn('effect already recorded by an earlier attempt; not applied again');
        const processedAt = new Date();
        if (await orders.complete(order.id, processedAt)) {
          notifyProcessed({ ...order, status: 'PROCESSED', processedAt, updatedAt: processedAt });
        }
        return 'completed';
      } catch (err) {
        if (input.signal?.aborted) throw new AttemptAbandonedError(order.id);
        const message = truncateReason(err instanceof Error ? err.message : String(err));
        if (input.isLastAttempt) await orders.fail(order.id, message);
        else await orders.scheduleRetry(order.id, message);
        throw err;
      }
    },

    /**
     * The job failed for good without the attempt saying so (it stalled too often, or the worker
     * died): make sure the order is FAILED too, so order and dead-letter queue agree.
     */
    async markDead(orderId: string, reason: string): Promise<void> {
      // Only PROCESSING: PENDING → FAILED is no legal move. A PENDING order whose job died before
      // the claim is found by the reconciler (PENDING order, failed job) and its job retried.
      await orders.fail(orderId, truncateReason(reason));
    },
  };
}
