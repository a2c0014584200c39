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
  /** 1-based number of this attempt in the job's current series (what `history[].attempt` records). */
  readonly jobAttempt: number;
  /** True when no retry follows a failure of this attempt: the job is then dead. */
  readonly isLastAttempt: boolean;
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

/**
 * How an attempt ended when it did not throw. `restart_series`: the order is dead (FAILED) and its
 * job was retried in the middle of a series; a dead order is taken only by the first attempt of a
 * fresh series, so the worker restarts the job's series and leaves the order as it is.
 */
export type AttemptOutcome = 'completed' | 'noop_terminal' | 'restart_series';

export type OrderProcessingService = ReturnType<typeof createOrderProcessingService>;

/**
 * One attempt at an order: claim it (atomic), run the business step, record its effect under the
 * order id (exactly once), mark it PROCESSED. A failure moves it back to PENDING when a retry
 * follows, else down {@link onJobDead}, and is rethrown so the queue retries or dead-letters the job.
 */
export function createOrderProcessingService(deps: {
  readonly repository: WorkerOrderRepository;
  readonly step: BusinessStep;
  readonly logger: Logger;
  /** Told of each order this service moves to PROCESSED (the worker measures end-to-end latency with it). */
  readonly onProcessed?: (order: Order) => void;
}) {
  const { repository, step, logger, onProcessed } = deps;
  // An observer must never turn a finished order into a failed attempt.
  const notifyProcessed = (order: Order) => {
    try {
      onProcessed?.(order);
    } catch (err) {
      logger.warn({ err }, 'onProcessed observer failed');
    }
  };

  /**
   * The one path by which an order follows its dead job (the last attempt failed, the job stalled out,
   * the reconciler found it failed): PROCESSING → FAILED, so order and dead-letter queue agree. True
   * when the order moved. A PENDING order is left alone (PENDING → FAILED is no legal move): the
   * reconciler finds a PENDING order with a failed job and retries the job.
   */
  async function onJobDead(orderId: string, reason: string): Promise<boolean> {
    return (await repository.fail(orderId, truncateReason(reason))) !== null;
  }

  /** Takes the order for this attempt, or says why not. */
  async function claim(input: AttemptInput): Promise<Order | Exclude<AttemptOutcome, 'completed'>> {
    const claimed = await repository.claim(input.orderId, input.jobAttempt);
    if (claimed) return claimed;
    const existing = await repository.findById(input.orderId);
    if (!existing) throw new OrderNotFoundError(input.orderId);
    if (TERMINAL_STATUSES.includes(existing.status)) {
      logger.info({ status: existing.status }, 'order already terminal; job completes as a no-op');
      return 'noop_terminal';
    }
    if (existing.status === 'FAILED') {
      // A dead order's job was retried as it was. It runs again as a fresh series, or not at all.
      if (input.jobAttempt > 1) return 'restart_series';
      const revived = await repository.claimDead(input.orderId, input.jobAttempt);
      if (revived) return revived;
    }
    // Moved by someone else between our reads (a reprocess, a cancel): worth a retry of the job.
    throw new Error(`order ${input.orderId} could not be claimed from ${existing.status}`);
  }

  return {
    async attempt(input: AttemptInput): Promise<AttemptOutcome> {
      const order = await claim(input);
      if (typeof order === 'string') return order;
      try {
        // The step's attempt is the order's count of claims (`attempts`), which keeps growing across
        // reprocessing; the job's attempt starts again, and a reprocessed order must not simply
        // replay the failures of its first series.
        await step(order, order.attempts, input.signal);
        const recorded = await repository.recordEffect({
          orderId: order.id,
          totalCents: order.totalCents,
          currency: order.currency,
          jobAttempt: input.jobAttempt,
          jobId: input.jobId,
        });
        if (!recorded) logger.warn('effect already recorded by an earlier attempt; not applied again');
        const processedAt = new Date();
        if (await repository.complete(order.id, processedAt)) {
          notifyProcessed({ ...order, status: 'PROCESSED', processedAt, updatedAt: processedAt });
        }
        return 'completed';
      } catch (err) {
        if (input.signal?.aborted) throw new AttemptAbandonedError(order.id);
        const message = truncateReason(err instanceof Error ? err.message : String(err));
        if (input.isLastAttempt) await onJobDead(order.id, message);
        else await repository.scheduleRetry(order.id, message);
        throw err;
      }
    },

    onJobDead,
  };
}
