import { TERMINAL_STATUSES, truncateReason, type Logger } from '#common';
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
}) {
  const { orders, step, logger } = deps;
  return {
    async attempt(input: AttemptInput): Promise<AttemptOutcome> {
      const order = await orders.claim(input.orderId, input.attempt);
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
        await step(order, input.attempt);
        const recorded = await orders.recordEffect({
          orderId: order.id,
          totalCents: order.totalCents,
          currency: order.currency,
          attempt: input.attempt,
          jobId: input.jobId,
        });
        if (!recorded) logger.warn('effect already recorded by an earlier attempt; not applied again');
        await orders.complete(order.id);
        return 'completed';
      } catch (err) {
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
      await orders.fail(orderId, truncateReason(reason), ['PROCESSING', 'PENDING']);
    },
  };
}
