import { TERMINAL_STATUSES, holdsEffects, truncateReason, type BoardRetryMark, type Logger, type Order } from '#common';
import type { WorkerOrderRepository } from '../repositories/order-repository.js';
import type { OrderSaga, SagaContext } from '../saga/order-saga.js';
import { CircuitOpenError } from '../saga/ports.js';

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
  /** Told of each saga step that ends (job progress, metrics); it must not throw. */
  readonly onStep?: SagaContext['onStep'];
  /** The operator who retried the dead job from the dashboard (from the job's data), and when. */
  readonly retriedBy?: BoardRetryMark;
}

/** The attempt was abandoned (shutdown): the order stays PROCESSING and the next claim takes it over. */
export class AttemptAbandonedError extends Error {
  constructor(orderId: string) {
    super(`attempt on ${orderId} abandoned; the job goes back to the queue`);
    this.name = 'AttemptAbandonedError';
  }
}

/**
 * The payment provider's breaker is open: the order went back to PENDING and the job is to wait
 * `delayMs` without spending an attempt (the processor moves it to the delayed set).
 */
export class WaitForProviderError extends Error {
  constructor(
    orderId: string,
    readonly delayMs: number,
  ) {
    super(`payment provider unavailable (circuit open); ${orderId} waits ${delayMs} ms without spending an attempt`);
    this.name = 'WaitForProviderError';
  }
}

/**
 * How an attempt ended when it did not throw. `completed`: PROCESSED; `rejected`: REJECTED (a business
 * refusal); `compensated`: a cancelled order's effects were undone; `noop_terminal`: nothing to do;
 * `restart_series`: the order is dead (FAILED) and its job was retried in the middle of a series; a
 * dead order is taken only by the first attempt of a fresh series, so the worker restarts the job's
 * series and leaves the order as it is.
 */
export type AttemptOutcome = 'completed' | 'rejected' | 'compensated' | 'noop_terminal' | 'restart_series';

/** What the worker's metrics are told as orders end. */
export interface OrderOutcomeObserver {
  processed?(order: Order): void;
  rejected?(order: Order, reason: string): void;
  dead?(orderId: string): void;
  compensationFailed?(orderId: string, err: unknown): void;
}

/** One observer that tells each of `observers` (absent ones skipped), in order. */
export function combineObservers(...observers: (OrderOutcomeObserver | undefined)[]): OrderOutcomeObserver {
  const present = observers.filter((o): o is OrderOutcomeObserver => o !== undefined);
  return {
    processed: (order) => present.forEach((o) => o.processed?.(order)),
    rejected: (order, reason) => present.forEach((o) => o.rejected?.(order, reason)),
    dead: (orderId) => present.forEach((o) => o.dead?.(orderId)),
    compensationFailed: (orderId, err) => present.forEach((o) => o.compensationFailed?.(orderId, err)),
  };
}

export type OrderProcessingService = ReturnType<typeof createOrderProcessingService>;

/**
 * One attempt at an order: claim it (atomic), run the order workflow (the saga: reserve, charge,
 * confirm) from its first step not done, record its effect under the order id (exactly once), mark it
 * PROCESSED. A business refusal makes it REJECTED; an open payment breaker sends it back to PENDING
 * with its job delayed; any other failure moves it back to PENDING when a retry follows, else down
 * {@link onJobDead} (compensation, then FAILED), and is rethrown so the queue retries or dead-letters
 * the job.
 */
export function createOrderProcessingService(deps: {
  readonly repository: WorkerOrderRepository;
  readonly saga: OrderSaga;
  readonly logger: Logger;
  readonly observer?: OrderOutcomeObserver;
}) {
  const { repository, saga, logger } = deps;
  // An observer must never turn a finished order into a failed attempt.
  const tell = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      logger.warn({ err }, 'order outcome observer failed');
    }
  };

  /**
   * Undoes what the order still holds (refund, release), recording each undo. Best effort here: a
   * failure is logged and counted, and the effects stay recorded as done on the order, so a cancel
   * or a reprocess of the dead order finds them (a reprocess resumes with them; a cancel undoes them).
   */
  async function compensate(order: Order, onStep?: SagaContext['onStep']): Promise<boolean> {
    try {
      await saga.compensate(order, { onStep });
      return true;
    } catch (err) {
      logger.error({ err, orderId: order.id }, 'compensation failed; the order keeps its effects recorded');
      tell(() => deps.observer?.compensationFailed?.(order.id, err));
      return false;
    }
  }

  /**
   * Whether a dead order's sale has begun (an attempt cut between the sale and the PROCESSED mark,
   * e.g. a job that stalled out there): then it only rolls forward, and a reprocess completes it
   * without charging or selling again. When the stock cannot be read the answer is yes: nothing is
   * undone now, the effects stay recorded, and a reprocess or a cancel settles them.
   */
  async function saleMayHaveBegun(order: Order): Promise<boolean> {
    try {
      const begun = await saga.saleBegun(order);
      if (begun)
        logger.warn({ orderId: order.id }, 'the sale had begun: the dead order keeps its effects and rolls forward');
      return begun;
    } catch (err) {
      logger.warn({ err, orderId: order.id }, 'could not tell whether the sale had begun; nothing undone now');
      return true;
    }
  }

  /**
   * The one path by which an order follows its dead job (the last attempt failed, the job stalled out,
   * the reconciler found it failed): what it holds is undone, then PROCESSING → FAILED, so order and
   * dead-letter queue agree. True when the order moved. A PENDING order is left alone (PENDING →
   * FAILED is no legal move): the reconciler finds a PENDING order with a failed job and retries the job.
   * `sold`: the sale was made in this attempt (the workflow's pivot), so nothing is undone: a reprocess
   * completes the order without charging or selling again.
   */
  async function onJobDead(orderId: string, reason: string, options: { sold?: boolean } = {}): Promise<boolean> {
    const order = await repository.findById(orderId);
    if (!order || order.status !== 'PROCESSING') return false;
    if (!options.sold && holdsEffects(order) && !(await saleMayHaveBegun(order))) await compensate(order);
    const failed = (await repository.fail(orderId, truncateReason(reason))) !== null;
    if (failed) tell(() => deps.observer?.dead?.(orderId));
    return failed;
  }

  /** Takes the order for this attempt, or says why not (with the order as it is, when it exists). */
  async function claim(input: AttemptInput): Promise<Order | { outcome: AttemptOutcome; order?: Order }> {
    const claimed = await repository.claim(input.orderId, input.jobAttempt);
    if (claimed) return claimed;
    const existing = await repository.findById(input.orderId);
    if (!existing) throw new OrderNotFoundError(input.orderId);
    if (TERMINAL_STATUSES.includes(existing.status)) return { outcome: 'noop_terminal', order: existing };
    if (existing.status === 'FAILED') {
      // A dead order's job was retried as it was. It runs again as a fresh series, or not at all.
      if (input.jobAttempt > 1) return { outcome: 'restart_series' };
      // The operator is named only for a retry made after this failure (a mark left by an older one is stale).
      const mark = input.retriedBy;
      const by = mark && existing.failedAt && mark.at >= existing.failedAt.getTime() ? mark.by : undefined;
      const revived = await repository.claimDead(input.orderId, input.jobAttempt, by);
      if (revived) return revived;
    }
    // Moved by someone else between our reads (a reprocess, a cancel): worth a retry of the job.
    throw new Error(`order ${input.orderId} could not be claimed from ${existing.status}`);
  }

  /** A terminal order's job: a cancelled order that still holds effects has them undone (retried until done). */
  async function settleTerminal(order: Order, input: AttemptInput): Promise<AttemptOutcome> {
    if (order.status === 'CANCELLED' && holdsEffects(order)) {
      await saga.compensate(order, { onStep: input.onStep });
      await repository.compensationSettled(order.id);
      logger.info('cancelled order compensated (refund, release)');
      return 'compensated';
    }
    logger.info({ status: order.status }, 'order already terminal; job completes as a no-op');
    return 'noop_terminal';
  }

  return {
    async attempt(input: AttemptInput): Promise<AttemptOutcome> {
      const claimed = await claim(input);
      if (!('id' in claimed)) return claimed.order ? settleTerminal(claimed.order, input) : claimed.outcome;
      let order = claimed;
      let sold = false;
      try {
        // An order that died before may hold half-undone effects (a refund made, its record lost):
        // finish its compensation before it runs again, so no step is skipped on a stale checkpoint.
        // A dead order whose sale had begun is not undone: it resumes at confirm.
        if (order.failedAt !== null && holdsEffects(order) && !(await saga.saleBegun(order))) {
          await saga.compensate(order, { onStep: input.onStep });
          order = (await repository.findById(order.id)) ?? order;
        }
        const result = await saga.run(order, { signal: input.signal, onStep: input.onStep });
        if (result.outcome === 'rejected') {
          if (await repository.reject(order.id, result.reason, result.detail)) {
            tell(() => deps.observer?.rejected?.(order, result.reason));
          }
          return 'rejected';
        }
        // The sale is made: from here on the order only rolls forward.
        sold = true;
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
          const done = { ...order, status: 'PROCESSED' as const, processedAt, updatedAt: processedAt };
          tell(() => deps.observer?.processed?.(done));
        }
        return 'completed';
      } catch (err) {
        if (input.signal?.aborted) throw new AttemptAbandonedError(order.id);
        const message = truncateReason(err instanceof Error ? err.message : String(err));
        if (err instanceof CircuitOpenError) {
          // Not the order's fault and not a spent attempt: back to PENDING, the job waits for the breaker.
          await repository.scheduleRetry(order.id, message);
          throw new WaitForProviderError(order.id, err.retryAfterMs);
        }
        if (input.isLastAttempt) await onJobDead(order.id, message, { sold });
        else await repository.scheduleRetry(order.id, message);
        throw err;
      }
    },

    onJobDead: (orderId: string, reason: string) => onJobDead(orderId, reason),
  };
}
