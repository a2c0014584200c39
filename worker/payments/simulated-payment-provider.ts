import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { PaymentUnavailableError, type Charge, type ChargeRequest, type PaymentPort } from '../saga/ports.js';
import { failureDraw } from './failure-draw.js';
import { recordPaymentCall, type PaymentMetrics } from './payment-metrics.js';
import { PaymentRequestError } from './payment-request-error.js';

/**
 * The in-process payment provider, used when `PAYMENT_PROVIDER_URL` is unset (docs/design.md, "Payment
 * provider"). A charge waits `delayMs`, then fails transiently ({@link PaymentUnavailableError}) when
 * the draw for the order id and claim count is below `failureRate` — the same draw as the old
 * simulated business step (`failureDraw`), so FAILURE_RATE keeps its meaning — and declines an order
 * whose `testCard` is `"declined"`. Charges are kept under `<orderId>:charge`, so a repeat returns the
 * same charge, and refunds under `<orderId>:refund`.
 *
 * Simulated charges live in this process's memory only: they do not survive a worker restart, nor are
 * they seen by another worker, so a charge made before a crash is unknown to the worker that resumes
 * the order. That is what the HTTP provider and its sandbox are for; this one keeps `npm test` and the
 * benchmark free of a fourth process.
 */
export function createSimulatedPaymentProvider(options: {
  readonly delayMs: number;
  readonly failureRate: number;
  readonly metrics?: PaymentMetrics;
}): PaymentPort {
  const charges = new Map<string, { readonly charge: Charge; readonly currency: string; readonly testCard?: string }>();
  const refunds = new Map<string, { readonly id: string; readonly chargeId: string; readonly amountCents: number }>();
  const record = (operation: 'charge' | 'refund' | 'find_charge', outcome: 'ok' | 'declined', started: number) => {
    if (options.metrics) recordPaymentCall(options.metrics, operation, outcome, (performance.now() - started) / 1000);
  };

  return {
    async charge(request: ChargeRequest): Promise<Charge> {
      const started = performance.now();
      if (options.delayMs > 0) await sleep(options.delayMs, undefined, { signal: request.signal });
      request.signal?.throwIfAborted();
      // No hash at all when nothing is meant to fail (the production setting), as in the business step.
      if (options.failureRate > 0 && failureDraw(request.orderId, request.claims) < options.failureRate) {
        if (options.metrics) recordPaymentCall(options.metrics, 'charge', 'simulated_failure', undefined);
        throw new PaymentUnavailableError(`simulated failure of ${request.orderId} on attempt ${request.claims}`);
      }
      const key = request.idempotencyKey ?? `${request.orderId}:charge`;
      const seen = charges.get(key);
      if (seen) {
        // As a real provider would: the key stands for one request, and a different one under it is refused.
        if (
          seen.charge.amountCents !== request.amountCents ||
          seen.currency !== request.currency ||
          seen.testCard !== request.testCard
        ) {
          throw new PaymentRequestError(`idempotency key ${key} was used with another request`, 422);
        }
        record('charge', seen.charge.status === 'declined' ? 'declined' : 'ok', started);
        return seen.charge;
      }
      const charge: Charge = Object.freeze({
        id: `ch_sim_${randomBytes(12).toString('hex')}`,
        orderId: request.orderId,
        status: request.testCard === 'declined' ? 'declined' : 'succeeded',
        amountCents: request.amountCents,
      });
      charges.set(key, { charge, currency: request.currency, testCard: request.testCard });
      record('charge', charge.status === 'declined' ? 'declined' : 'ok', started);
      return charge;
    },

    async findCharge(orderId: string, idempotencyKey?: string): Promise<Charge | null> {
      const started = performance.now();
      const found = charges.get(idempotencyKey ?? `${orderId}:charge`)?.charge ?? null;
      record('find_charge', 'ok', started);
      return found;
    },

    async refund(request): Promise<{ readonly id: string }> {
      const started = performance.now();
      // Refund keys are scoped to the charge they refund (the API's refund route names the charge), so
      // a later charge of the same order, made after the first was refunded, gets its own refund.
      const key = `${request.chargeId}\n${request.orderId}:refund`;
      const seen = refunds.get(key);
      if (seen) {
        if (seen.chargeId !== request.chargeId || seen.amountCents !== request.amountCents) {
          throw new PaymentRequestError(`idempotency key ${request.orderId}:refund was used with another request`, 422);
        }
        record('refund', 'ok', started);
        return { id: seen.id };
      }
      const charge = [...charges.values()].find((c) => c.charge.id === request.chargeId)?.charge;
      if (!charge || charge.orderId !== request.orderId) {
        throw new PaymentRequestError(`charge ${request.chargeId} not found for ${request.orderId}`, 404);
      }
      if (charge.status !== 'succeeded') {
        throw new PaymentRequestError(`charge ${request.chargeId} was ${charge.status}: nothing to refund`, 409);
      }
      if (request.amountCents <= 0 || request.amountCents > charge.amountCents) {
        throw new PaymentRequestError(`refund of ${request.amountCents} exceeds charge ${charge.id}`, 409);
      }
      const refund = Object.freeze({
        id: `re_sim_${randomBytes(12).toString('hex')}`,
        chargeId: charge.id,
        amountCents: request.amountCents,
      });
      refunds.set(key, refund);
      record('refund', 'ok', started);
      return { id: refund.id };
    },
  };
}
