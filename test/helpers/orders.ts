import { PUBLIC_SCOPE, randomOrderId, type OrderDocument } from '#common';

/**
 * An order document as the api would have stored it (one item, 2 × 1250 EUR cents, enqueued),
 * in `status`, at `at`, with `overrides` applied last. Tests insert it straight into MongoDB to set
 * up states the API cannot reach on its own.
 */
export function storedOrder(
  status: OrderDocument['status'],
  overrides: Partial<OrderDocument> = {},
  at: Date = new Date(Date.now() - 60_000),
): OrderDocument {
  return {
    _id: randomOrderId(),
    status,
    clientId: PUBLIC_SCOPE,
    customerId: 'c-42',
    items: [{ sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 }],
    totalCents: 2500,
    currency: 'EUR',
    attempts: 0,
    lastError: null,
    history: [{ status: 'PENDING', at }],
    fingerprint: 'f'.repeat(64),
    correlationId: 'test-correlation',
    enqueuedAt: at,
    createdAt: at,
    updatedAt: at,
    processedAt: null,
    failedAt: null,
    ...overrides,
  };
}

/**
 * The status transitions of an order's history, without the workflow's step entries (`step` set):
 * what the tests of the state machine's moves compare.
 */
export function transitionsOf<T extends object>(history: readonly T[]): T[] {
  return history.filter((entry) => (entry as { readonly step?: unknown }).step === undefined);
}
