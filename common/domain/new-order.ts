import { computeTotalCents, type NewOrderInput, type Order } from './order.js';
import { DEFAULT_PRIORITY } from './scheduling.js';

/**
 * The document of a new order as the api stores it: PENDING, no claims yet, one history entry,
 * `enqueuedAt` null until its job is confirmed in Redis (the outbox's first half).
 */
export function newOrder(fields: {
  readonly id: string;
  /** The client that owns it (its idempotency scope). */
  readonly clientId: string;
  readonly input: NewOrderInput;
  /** sha256 of the canonical request body when an Idempotency-Key was sent, else null. */
  readonly fingerprint: string | null;
  readonly correlationId: string;
  readonly at: Date;
}): Order {
  const { id, clientId, input, at } = fields;
  const { customerId, items, currency, metadata, priority, notBefore } = input;
  return {
    id,
    status: 'PENDING',
    clientId,
    customerId,
    items: items.map(({ sku, quantity, unitPriceCents }) => ({ sku, quantity, unitPriceCents })),
    totalCents: computeTotalCents(items),
    currency,
    ...(metadata ? { metadata: { ...metadata } } : {}),
    priority: priority ?? DEFAULT_PRIORITY,
    notBefore: notBefore === undefined ? null : new Date(notBefore),
    attempts: 0,
    lastError: null,
    history: [{ status: 'PENDING', at }],
    fingerprint: fields.fingerprint,
    correlationId: fields.correlationId,
    enqueuedAt: null,
    createdAt: at,
    updatedAt: at,
    processedAt: null,
    failedAt: null,
  };
}
