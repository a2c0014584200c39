import type { Logger, Order, RejectionReason, StepCheckpoint, StepName } from '#common';
import {
  chargeKey,
  type Charge,
  type InventoryPort,
  type PaymentPort,
  type SagaOrderPort,
  type SagaOutcome,
} from './ports.js';

/** What the saga reads of an order: the claimed order as the repository returns it will do. */
export type SagaOrder = Pick<Order, 'id' | 'items' | 'totalCents' | 'currency' | 'metadata' | 'attempts' | 'steps'>;

/** One step's end, for job progress and step-duration metrics. */
export interface SagaStepEvent {
  readonly orderId: string;
  readonly step: StepName;
  /** `done` / `rejected` / `failed` (it threw) in a run; `compensated` in a compensation. */
  readonly outcome: 'done' | 'rejected' | 'failed' | 'compensated';
  readonly ms: number;
}

export interface SagaContext {
  /** Aborted when the worker hands the job back: checked before each step, never inside one. */
  readonly signal?: AbortSignal;
  /** Told of every step that ends (not of the steps a resumed run skips); it must not throw. */
  readonly onStep?: (event: SagaStepEvent) => void;
}

export type OrderSaga = ReturnType<typeof createOrderSaga>;

type Rejection = Extract<SagaOutcome, { outcome: 'rejected' }>;

const PROCESSED: SagaOutcome = { outcome: 'processed' };

const isDone = (checkpoint: StepCheckpoint | undefined) => checkpoint?.status === 'done';

/** The id of the order's refunded charge, when the charge step was compensated (DESIGN: a new series). */
const refundedChargeId = (order: SagaOrder) =>
  order.steps?.charge?.status === 'compensated' ? order.steps.charge.ref : undefined;

/** How a compensation tells its observer: only an undone effect that was recorded is told. */
const undone = (recorded: boolean) => (recorded ? ('compensated' as const) : undefined);

const rejection = (reason: RejectionReason, detail: string): Rejection => ({ outcome: 'rejected', reason, detail });

/**
 * The order workflow (docs/design.md, "The order workflow") over its ports: `run` resumes at the first
 * step whose checkpoint is not `done` (reserve → charge → confirm), `compensate` undoes in reverse what
 * a dead or cancelled order still holds. Every effect is idempotent under its key and every step
 * leaves its checkpoint after its effect, so a run cut anywhere (error, crash, stall) and run again
 * repeats no effect. Errors (PaymentUnavailableError, CircuitOpenError, MongoDB's) propagate
 * unchanged: the caller decides between retry, delay and dead letter.
 *
 * - `confirm` has no checkpoint of its own here: the sale is made and `run` returns `processed`; the
 *   caller's PROCESSED transition writes `steps.confirm` in the same update, so there is no moment
 *   where confirm is done and the order is not PROCESSED. A crash in between makes the next run sell
 *   again, which is a no-op (`commit` is idempotent).
 * - `notify` is not the saga's: its event is keyed by the order's final status, which the caller
 *   writes after `run` returns; it belongs after that transition.
 * - A free order (`totalCents` 0) is not sent to the provider; its charge step is done without a ref.
 */
export function createOrderSaga(deps: {
  readonly inventory: InventoryPort;
  readonly payments: PaymentPort;
  readonly orders: SagaOrderPort;
  readonly logger: Logger;
  /** A monotonic clock in ms, for step durations. */
  readonly now?: () => number;
}) {
  const { inventory, payments, orders } = deps;
  const logger = deps.logger.child({ module: 'order-saga' });
  const now = deps.now ?? (() => performance.now());

  /** Runs one step, timing it and telling the observer how it ended (`tellAs` undefined: nothing to tell). */
  async function timed<T>(
    order: SagaOrder,
    step: StepName,
    ctx: SagaContext,
    fn: () => Promise<T>,
    tellAs: (result: T) => SagaStepEvent['outcome'] | undefined,
  ): Promise<T> {
    ctx.signal?.throwIfAborted();
    const startedAt = now();
    const tell = (outcome: SagaStepEvent['outcome'] | undefined) => {
      if (outcome === undefined || !ctx.onStep) return;
      try {
        ctx.onStep({ orderId: order.id, step, outcome, ms: now() - startedAt });
      } catch (err) {
        logger.warn({ err, orderId: order.id, step }, 'saga step observer failed');
      }
    };
    try {
      const result = await fn();
      tell(tellAs(result));
      return result;
    } catch (err) {
      tell('failed');
      throw err;
    }
  }

  // --- the steps -----------------------------------------------------------------------------------

  async function reserve(order: SagaOrder): Promise<Rejection | undefined> {
    const result = await inventory.reserve(order.id, order.items);
    // reserve rolled back whatever it took, and nothing later than reserve has happened: nothing to undo.
    if (result.outcome === 'out_of_stock') return rejection('OUT_OF_STOCK', `not enough stock of ${result.sku}`);
    await orders.checkpoint(order.id, 'reserve');
    return undefined;
  }

  async function charge(order: SagaOrder, ctx: SagaContext): Promise<Rejection | undefined> {
    if (order.totalCents === 0) {
      await orders.checkpoint(order.id, 'charge');
      return undefined;
    }
    const result = await chargeOnce(order, ctx.signal);
    if (result.status === 'declined') {
      // reserve is done (this run or an earlier one): undo it before the order becomes REJECTED. No
      // abort check here: the undo belongs to the charge step already under way.
      const observer = { onStep: ctx.onStep };
      await timed(order, 'reserve', observer, () => releaseReservation(order, { record: true }), undone);
      return rejection('PAYMENT_DECLINED', `charge ${result.id} was declined`);
    }
    await orders.checkpoint(order.id, 'charge', result.id);
    return undefined;
  }

  async function confirm(order: SagaOrder): Promise<undefined> {
    await inventory.commit(order.id, order.items);
    return undefined;
  }

  /**
   * Charges the order under its current key. A later claim may follow a charge whose answer was lost
   * (timeout, crash before the checkpoint): it asks the provider first. The key would make a second
   * request harmless anyway; asking is a read, and it is what docs/design.md's "unknown outcome" says.
   */
  async function chargeOnce(order: SagaOrder, signal?: AbortSignal): Promise<Charge> {
    const refunded = refundedChargeId(order);
    const key = chargeKey(order.id, refunded);
    const found = order.attempts > 1 ? await payments.findCharge(order.id, key) : null;
    const result =
      found ??
      (await payments.charge({
        orderId: order.id,
        amountCents: order.totalCents,
        currency: order.currency,
        testCard: order.metadata?.testCard,
        claims: order.attempts,
        idempotencyKey: key,
        // Shutdown past its bound aborts the call; the outcome is then unknown, as after a timeout.
        ...(signal ? { signal } : {}),
      }));
    // A provider that ignored the new key hands back the refunded charge: taking it would ship unpaid.
    if (refunded !== undefined && result.id === refunded) {
      throw new Error(`payment provider returned refunded charge ${refunded} under key ${key}`);
    }
    return result;
  }

  // --- compensation (each returns whether it undid a recorded effect) ----------------------------

  /**
   * Refunds the order's charge, if one stands: the checkpoint's, or (checkpoint missing: a crash
   * between the charge and its checkpoint) one the provider holds under the order's current key.
   */
  async function refundCharge(order: SagaOrder): Promise<boolean> {
    const checkpoint = order.steps?.charge;
    if (isDone(checkpoint) && order.totalCents === 0) {
      // A free order: nothing was paid, but the step is marked undone so a reprocess runs it again.
      await orders.compensated(order.id, 'charge');
      return true;
    }
    const chargeId = (isDone(checkpoint) && checkpoint?.ref) || (await unrecordedChargeId(order));
    if (chargeId === undefined) return false;
    const refund = await payments.refund({ orderId: order.id, chargeId, amountCents: order.totalCents });
    logger.info({ orderId: order.id, chargeId, refundId: refund.id }, 'charge refunded');
    await orders.compensated(order.id, 'charge', chargeId);
    return true;
  }

  async function unrecordedChargeId(order: SagaOrder): Promise<string | undefined> {
    // Never claimed, or nothing to pay: no charge can have been made.
    if (order.attempts === 0 || order.totalCents === 0) return undefined;
    const refunded = refundedChargeId(order);
    const found = await payments.findCharge(order.id, chargeKey(order.id, refunded));
    return found?.status === 'succeeded' && found.id !== refunded ? found.id : undefined;
  }

  /**
   * Gives the order's reservation back. `release` is a no-op when the order holds none, so it is
   * also called when the checkpoint is missing (a crash between reserve and its checkpoint would
   * otherwise strand the stock); only a reservation the order recorded is recorded as compensated.
   */
  async function releaseReservation(
    order: SagaOrder,
    options: { readonly record: boolean; readonly sold?: boolean },
  ): Promise<boolean> {
    if (!options.record && order.attempts === 0) return false;
    await inventory.release(order.id, order.items);
    if (options.record) await orders.compensated(order.id, 'reserve', options.sold ? 'sold' : undefined);
    return options.record;
  }

  /**
   * Whether the order's sale has begun: confirmed, or reserved and charged with a tracked SKU's hold
   * gone. With both checkpoints done every tracked SKU held the reservation, and compensation refunds
   * the charge (its checkpoint no longer done) before it releases anything, so a missing hold was sold
   * by `commit` (perhaps on some SKUs only, if the run was cut mid-sale). From there the order only rolls
   * forward. An order of untracked SKUs only leaves nothing to tell by; its sale moves no stock, so
   * undoing it and running it again repeats no effect.
   */
  async function saleBegun(order: SagaOrder): Promise<boolean> {
    if (isDone(order.steps?.confirm)) return true;
    if (!isDone(order.steps?.reserve) || !isDone(order.steps?.charge)) return false;
    const { tracked, holding } = await inventory.holds(order.id, order.items);
    return holding < tracked;
  }

  const STEPS: readonly [StepName, (order: SagaOrder, ctx: SagaContext) => Promise<Rejection | undefined>][] = [
    ['reserve', reserve],
    ['charge', charge],
    ['confirm', confirm],
  ];

  return {
    /**
     * Runs the order (claimed, PROCESSING) from its first step not done. `processed`: the sale is
     * made and the caller marks the order PROCESSED (writing `steps.confirm`); `rejected`: a business
     * refusal, whatever was done is already undone, and the caller marks it REJECTED. Throws what
     * the ports throw, leaving the checkpoints of the steps that were done.
     */
    async run(order: SagaOrder, ctx: SagaContext = {}): Promise<SagaOutcome> {
      for (const [step, fn] of STEPS) {
        if (isDone(order.steps?.[step])) continue;
        const rejected = await timed(
          order,
          step,
          ctx,
          () => fn(order, ctx),
          (r) => (r ? 'rejected' : 'done'),
        );
        if (rejected) {
          logger.info({ orderId: order.id, step, reason: rejected.reason }, rejected.detail);
          return rejected;
        }
      }
      return PROCESSED;
    },

    saleBegun,

    /**
     * Undoes, in reverse order, what the order (FAILED, CANCELLED, or PROCESSING on its way to one of
     * them) still holds: refund the charge, then release the reservation, each recorded. Throws at the
     * first failure, leaving the rest for the next call; calling it again (with the order read
     * again) finishes the rest and repeats nothing. A confirmed order (sold, PROCESSED) is never compensated.
     * Once its sale has begun (see {@link saleBegun}) the sale stands: the charge is refunded, only
     * holds not yet sold go back, and the `reserve` checkpoint is closed with ref `sold`. The processing
     * service never compensates such an order on its way to FAILED (it rolls forward on a reprocess);
     * only a cancel of an order that died mid-sale gets here, and CANCELLED is terminal.
     */
    async compensate(order: SagaOrder, ctx: SagaContext = {}): Promise<void> {
      if (isDone(order.steps?.confirm)) throw new Error(`order ${order.id} is confirmed; a sale is not compensated`);
      // Read before the refund: once the charge is refunded, a missing hold no longer tells a sale.
      const sold = await saleBegun(order);
      await timed(order, 'charge', ctx, () => refundCharge(order), undone);
      const record = isDone(order.steps?.reserve);
      await timed(order, 'reserve', ctx, () => releaseReservation(order, { record, sold }), undone);
      if (sold) logger.warn({ orderId: order.id }, 'the sale had begun: charge refunded, sold stock stays sold');
    },
  };
}
