import { Schema, type Connection, type Model } from 'mongoose';
import { ORDER_STATUSES } from '../domain/order.js';
import { ORDER_PRIORITIES } from '../domain/scheduling.js';

/** Stored shape of an order; `_id` is the order id (`ord_…`). */
export interface OrderDocument {
  _id: string;
  status: (typeof ORDER_STATUSES)[number];
  clientId: string;
  customerId: string;
  items: { sku: string; quantity: number; unitPriceCents: number }[];
  totalCents: number;
  currency: string;
  metadata?: Record<string, string>;
  /** Absent on orders stored before priorities existed: `standard`. */
  priority?: string;
  notBefore?: Date | null;
  attempts: number;
  lastError: string | null;
  history: {
    status: string;
    at: Date;
    attempt?: number;
    reason?: string;
    by?: string;
    step?: string;
    action?: string;
    ref?: string;
  }[];
  fingerprint: string | null;
  correlationId: string;
  enqueuedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  processedAt: Date | null;
  failedAt: Date | null;
  /** The workflow's checkpoints, by step name. */
  steps?: Record<string, { status: string; at: Date; ref?: string }>;
  rejectionReason?: string | null;
  /** Set by a cancel until the order holds nothing (see orderMoves.cancel). */
  compensationDue?: boolean;
}

/** The record of an order's business effect; `_id` is the order id, so it can exist once only. */
export interface EffectDocument {
  _id: string;
  totalCents: number;
  currency: string;
  attempt: number;
  jobId: string;
  createdAt: Date;
}

const orderSchema = new Schema<OrderDocument>(
  {
    _id: { type: String, required: true },
    status: { type: String, enum: ORDER_STATUSES, required: true },
    clientId: { type: String, required: true },
    customerId: { type: String, required: true },
    items: {
      type: [{ _id: false, sku: String, quantity: Number, unitPriceCents: Number }],
      required: true,
    },
    totalCents: { type: Number, required: true },
    currency: { type: String, required: true },
    metadata: { type: Schema.Types.Mixed, default: undefined },
    priority: { type: String, enum: ORDER_PRIORITIES, default: undefined },
    notBefore: { type: Date, default: undefined },
    attempts: { type: Number, default: 0 },
    lastError: { type: String, default: null },
    history: [
      {
        _id: false,
        status: String,
        at: Date,
        attempt: Number,
        reason: String,
        by: String,
        step: String,
        action: String,
        ref: String,
      },
    ],
    fingerprint: { type: String, default: null },
    correlationId: { type: String, required: true },
    enqueuedAt: { type: Date, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    processedAt: { type: Date, default: null },
    failedAt: { type: Date, default: null },
    steps: { type: Schema.Types.Mixed, default: undefined },
    rejectionReason: { type: String, default: undefined },
    // Set by a cancel until the order holds nothing (see orderMoves.cancel); absent otherwise.
    compensationDue: { type: Boolean, default: undefined },
  },
  { collection: 'orders', versionKey: false, strict: 'throw', minimize: true },
);

// Keyset pagination (newest first), alone or with one filter, and the reconciler's scan of
// PENDING orders never enqueued. Each query of the system is served by one of these (a test checks).
// A client lists only its own orders, so the listing indexes lead with clientId.
orderSchema.index({ clientId: 1, createdAt: -1, _id: -1 }, { name: 'client_createdAt_id' });
orderSchema.index({ clientId: 1, status: 1, createdAt: -1, _id: -1 }, { name: 'client_status_createdAt_id' });
orderSchema.index({ clientId: 1, customerId: 1, createdAt: -1, _id: -1 }, { name: 'client_customer_createdAt_id' });
orderSchema.index({ status: 1, enqueuedAt: 1, createdAt: 1 }, { name: 'status_enqueuedAt_createdAt' });
// The dead-letter listing: FAILED orders, newest failure first.
orderSchema.index({ status: 1, failedAt: -1, _id: -1 }, { name: 'status_failedAt_id' });
// The reconciler's walk over in-flight (PENDING/PROCESSING) orders, oldest change first.
orderSchema.index({ status: 1, updatedAt: 1, _id: 1 }, { name: 'status_updatedAt_id' });
// The reconciler's scan of cancelled orders that may still hold effects: sparse, so it holds only those.
orderSchema.index({ compensationDue: 1, updatedAt: 1, _id: 1 }, { name: 'compensationDue_updatedAt_id', sparse: true });

const effectSchema = new Schema<EffectDocument>(
  {
    _id: { type: String, required: true },
    totalCents: Number,
    currency: String,
    attempt: Number,
    jobId: String,
    createdAt: Date,
  },
  { collection: 'order_effects', versionKey: false },
);

export interface OrderModels {
  readonly Order: Model<OrderDocument>;
  readonly Effect: Model<EffectDocument>;
}

/** Registers the models on a connection (never on the global mongoose). */
export function registerOrderModels(connection: Connection): OrderModels {
  return {
    Order: connection.models.Order ?? connection.model<OrderDocument>('Order', orderSchema),
    Effect: connection.models.Effect ?? connection.model<EffectDocument>('Effect', effectSchema),
  } as OrderModels;
}

/** Creates the collections' indexes; idempotent. Run once at start by the api and the worker. */
export async function ensureOrderIndexes(models: OrderModels): Promise<void> {
  await Promise.all([models.Order.createIndexes(), models.Effect.createIndexes()]);
}
