/**
 * The order workflow's ports (docs/design.md, "The order workflow"): what the saga needs from the world,
 * as narrow interfaces. The saga (worker/saga/order-saga.ts) is written against these only; the
 * MongoDB inventory repository, the payment providers (simulated and HTTP) and the order repository
 * implement them, and the unit tests use small in-memory fakes of each.
 */
import type { OrderItem, RejectionReason, StepName } from '#common';

/** Stock, per SKU, in the `inventory` collection. Every method is idempotent per order id. */
export interface InventoryPort {
  /**
   * Takes every item's quantity from `available` into `reserved`, all items or none. Items whose SKU
   * has no inventory document are untracked (always available, nothing counted). Calling it again
   * for an order that already holds its reservation (a retry after a crash) changes nothing and
   * reports `reserved`. When an item is short, whatever this order holds is released before it
   * returns `out_of_stock` naming the SKU. After `release` (a compensated order, reprocessed) it
   * takes the stock again.
   */
  reserve(
    orderId: string,
    items: readonly Pick<OrderItem, 'sku' | 'quantity'>[],
  ): Promise<{ readonly outcome: 'reserved' } | { readonly outcome: 'out_of_stock'; readonly sku: string }>;
  /**
   * The order's reservation becomes a sale (`reserved` → `sold`); a no-op when it holds none. A sale
   * is final: `release` leaves it alone. A sale leaves no hold behind (documents stay bounded), so
   * `reserve` for an order *after* its sale takes the stock again: the saga never calls it then
   * (its `reserve` checkpoint stays done once the sale has begun; see `holds`).
   */
  commit(orderId: string, items: readonly Pick<OrderItem, 'sku' | 'quantity'>[]): Promise<void>;
  /** The order's reservation goes back to `available`; a no-op when it holds none. */
  release(orderId: string, items: readonly Pick<OrderItem, 'sku' | 'quantity'>[]): Promise<void>;
  /**
   * How many of the order's SKUs are tracked, and on how many of those the order still holds its
   * reservation. Read-only. An order whose reservation is checkpointed and whose charge stands held
   * every tracked SKU; a hold that is gone then can only have been sold (compensation refunds the
   * charge before it releases anything), which is how the saga tells that the sale has begun.
   */
  holds(
    orderId: string,
    items: readonly Pick<OrderItem, 'sku' | 'quantity'>[],
  ): Promise<{ readonly tracked: number; readonly holding: number }>;
}

/** A charge as the payment provider reports it. */
export interface Charge {
  readonly id: string;
  readonly orderId: string;
  readonly status: 'succeeded' | 'declined';
  readonly amountCents: number;
}

export interface ChargeRequest {
  readonly orderId: string;
  readonly amountCents: number;
  readonly currency: string;
  /** `metadata.testCard` of the order: `"declined"` makes the simulated provider and the sandbox decline. */
  readonly testCard?: string;
  /** The order's claim count, so the simulated provider's failures are deterministic per order and claim. */
  readonly claims: number;
  /**
   * The charge's idempotency key; absent means `<orderId>:charge`. The saga always sets it (see
   * {@link chargeKey}): an order charged again after a refund gets a new key, not the refunded charge.
   */
  readonly idempotencyKey?: string;
  /**
   * Aborts the charge when the worker must hand the job back (shutdown past its bound), as the business
   * step's signal did. The outcome is then unknown, like after a timeout; it never counts against the breaker.
   */
  readonly signal?: AbortSignal;
}

/**
 * The idempotency key of an order's charge: `<orderId>:charge` (docs/design.md), or, once a charge of the
 * order was refunded (a dead or cancelled order compensated, then reprocessed),
 * `<orderId>:charge:<id of the refunded charge>`. Under the plain key the provider would hand back
 * the refunded charge forever, and the order would ship unpaid; the refunded charge's id is on the
 * order's `steps.charge.ref`, so the new key is known before the new charge is made and stays the
 * same across the new series' retries.
 */
export function chargeKey(orderId: string, refundedChargeId?: string): string {
  return refundedChargeId === undefined ? `${orderId}:charge` : `${orderId}:charge:${refundedChargeId}`;
}

/**
 * The payment provider. Idempotency keys are `<orderId>:charge` (or the request's `idempotencyKey`)
 * and `<orderId>:refund`, so repeating a call never moves money twice. A refund's key is scoped to
 * the charge it refunds (the provider API's refund route names the charge): the same charge is never
 * refunded twice, and a later charge of the same order gets its own refund. Transient trouble (timeout, 5xx, network) throws
 * {@link PaymentUnavailableError}; an open circuit throws {@link CircuitOpenError} without calling.
 */
export interface PaymentPort {
  charge(request: ChargeRequest): Promise<Charge>;
  /**
   * The charge made under `idempotencyKey` (absent: `<orderId>:charge`), if any: resolves an
   * unknown outcome after a timeout, and finds a charge a crash kept off the order's checkpoint.
   */
  findCharge(orderId: string, idempotencyKey?: string): Promise<Charge | null>;
  /** Refunds the charge in full, under `<orderId>:refund`. */
  refund(request: { readonly orderId: string; readonly chargeId: string; readonly amountCents: number }): Promise<{
    readonly id: string;
  }>;
}

/** The provider could not be reached or failed transiently: the attempt is retried. */
export class PaymentUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PaymentUnavailableError';
  }
}

/** The circuit breaker is open: no call was made; try again after `retryAfterMs`, without spending an attempt. */
export class CircuitOpenError extends Error {
  constructor(readonly retryAfterMs: number) {
    super(`payment provider circuit open; retry in ${retryAfterMs} ms`);
    this.name = 'CircuitOpenError';
  }
}

/**
 * What the saga records on the order. Each write is one conditional update; when the order is not in
 * a status that allows it, the write rejects (so a run whose order was taken from it stops).
 */
export interface SagaOrderPort {
  /** Marks `step` done (with the provider reference) and appends it to history; only while PROCESSING. */
  checkpoint(orderId: string, step: StepName, ref?: string): Promise<void>;
  /**
   * Marks `step` compensated (its effect undone) and appends that to history; while PROCESSING (a
   * declined charge), FAILED or CANCELLED. The checkpoint stays, with this status and `ref`: for
   * `charge` the ref is the refunded charge's id, which the next charge's key is made from.
   */
  compensated(orderId: string, step: StepName, ref?: string): Promise<void>;
}

/** How a saga run ended when it did not throw. */
export type SagaOutcome =
  | { readonly outcome: 'processed' }
  | { readonly outcome: 'rejected'; readonly reason: RejectionReason; readonly detail: string };
