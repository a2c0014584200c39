import type { Order, OrderStatus, RejectionReason, StepCheckpoints } from '../domain/order.js';
import { DEFAULT_PRIORITY, type OrderPriority } from '../domain/scheduling.js';
import type { OrderDocument } from './order-model.js';

type HistoryStep = NonNullable<Order['history'][number]['step']>;
type HistoryAction = NonNullable<Order['history'][number]['action']>;

/** Turns a lean stored document into the plain {@link Order} the rest of the code uses. */
export function toOrder(doc: OrderDocument): Order {
  const metadata = doc.metadata;
  return {
    id: doc._id,
    status: doc.status,
    clientId: doc.clientId,
    customerId: doc.customerId,
    items: doc.items.map(({ sku, quantity, unitPriceCents }) => ({ sku, quantity, unitPriceCents })),
    totalCents: doc.totalCents,
    currency: doc.currency,
    ...(metadata && Object.keys(metadata).length > 0 ? { metadata } : {}),
    priority: (doc.priority as OrderPriority | undefined) ?? DEFAULT_PRIORITY,
    notBefore: doc.notBefore ?? null,
    attempts: doc.attempts ?? 0,
    lastError: doc.lastError ?? null,
    history: (doc.history ?? []).map((h) => ({
      status: h.status as OrderStatus,
      at: h.at,
      ...(h.attempt != null ? { attempt: h.attempt } : {}),
      ...(h.reason != null ? { reason: h.reason } : {}),
      ...(h.by != null ? { by: h.by } : {}),
      ...(h.step != null ? { step: h.step as HistoryStep } : {}),
      ...(h.action != null ? { action: h.action as HistoryAction } : {}),
      ...(h.ref != null ? { ref: h.ref } : {}),
    })),
    fingerprint: doc.fingerprint ?? null,
    correlationId: doc.correlationId,
    enqueuedAt: doc.enqueuedAt ?? null,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    processedAt: doc.processedAt ?? null,
    failedAt: doc.failedAt ?? null,
    ...(doc.steps && Object.keys(doc.steps).length > 0 ? { steps: doc.steps as StepCheckpoints } : {}),
    rejectionReason: (doc.rejectionReason as RejectionReason | undefined) ?? null,
    ...(doc.compensationDue ? { compensationDue: true } : {}),
  };
}
