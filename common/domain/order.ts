import type { OrderPriority } from './scheduling.js';

/** Order states (docs/design.md, "State machine"). */
export const ORDER_STATUSES = ['PENDING', 'PROCESSING', 'PROCESSED', 'FAILED', 'REJECTED', 'CANCELLED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const TERMINAL_STATUSES: readonly OrderStatus[] = ['PROCESSED', 'REJECTED', 'CANCELLED'];

/** The steps of the order workflow, in the order they run (docs/design.md, "The order workflow"). */
export const STEP_NAMES = ['reserve', 'charge', 'confirm', 'notify'] as const;
export type StepName = (typeof STEP_NAMES)[number];

/**
 * A step's checkpoint on the order: `done` once its effect happened (the saga resumes at the first
 * step not done), `compensated` once that effect was undone (so a reprocessed order runs it again).
 */
export interface StepCheckpoint {
  readonly status: 'done' | 'compensated';
  readonly at: Date;
  /** The provider's reference for the effect (the charge id for `charge`). */
  readonly ref?: string;
}

export type StepCheckpoints = Readonly<Partial<Record<StepName, StepCheckpoint>>>;

/** Why an order was refused for business reasons (terminal `REJECTED`, never retried). */
export const REJECTION_REASONS = ['OUT_OF_STOCK', 'PAYMENT_DECLINED'] as const;
export type RejectionReason = (typeof REJECTION_REASONS)[number];

export interface OrderItem {
  readonly sku: string;
  readonly quantity: number;
  readonly unitPriceCents: number;
}

export interface HistoryEntry {
  readonly status: OrderStatus;
  readonly at: Date;
  readonly attempt?: number;
  readonly reason?: string;
  /** Who asked for the move: the operator of a reprocess or of a dashboard retry. */
  readonly by?: string;
  /** Set on a workflow entry: the step whose effect was done or undone (the status does not change). */
  readonly step?: StepName;
  readonly action?: StepCheckpoint['status'];
  /** The provider's reference of the effect (the charge id). */
  readonly ref?: string;
}

/** An order as the repositories return it: a plain object, no driver types. */
export interface Order {
  readonly id: string;
  readonly status: OrderStatus;
  readonly clientId: string;
  readonly customerId: string;
  readonly items: readonly OrderItem[];
  readonly totalCents: number;
  readonly currency: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Its priority class (docs/design.md, "Priorities and schedules"); `standard` unless asked otherwise. */
  readonly priority: OrderPriority;
  /** Not processed before this time; null when it may run at once. A PENDING order with it ahead is scheduled. */
  readonly notBefore: Date | null;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly history: readonly HistoryEntry[];
  /** sha256 of the canonical request body, kept to judge Idempotency-Key replays; null when no key was sent. */
  readonly fingerprint: string | null;
  readonly correlationId: string;
  readonly enqueuedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly processedAt: Date | null;
  readonly failedAt: Date | null;
  /** The workflow's checkpoints; absent until the first step is done. */
  readonly steps?: StepCheckpoints;
  /** Set when the order is `REJECTED`. */
  readonly rejectionReason?: RejectionReason | null;
  /** A cancelled order that may still hold effects, until the worker has undone them (internal; not in the view). */
  readonly compensationDue?: boolean;
}

/** What a client sends to create an order (validated before it gets here). */
export interface NewOrderInput {
  readonly customerId: string;
  readonly items: readonly OrderItem[];
  readonly currency: string;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Absent: `standard`. */
  readonly priority?: OrderPriority;
  /** ISO 8601 date-time, checked against the limits of `notBeforeProblem` on intake. */
  readonly notBefore?: string;
}

/** The most history entries an order keeps; older ones are dropped first. */
export const HISTORY_LIMIT = 50;

/** The most characters of an error message kept in `lastError` and in history reasons. */
export const REASON_LIMIT = 500;

/** Money in minor units; the server computes it, never the client. */
export function computeTotalCents(items: readonly OrderItem[]): number {
  return items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0);
}

/** The public shape of an order, as docs/design.md's "Orders" shows it. */
export function toOrderView(order: Order) {
  return {
    id: order.id,
    status: order.status,
    customerId: order.customerId,
    items: order.items.map(({ sku, quantity, unitPriceCents }) => ({ sku, quantity, unitPriceCents })),
    totalCents: order.totalCents,
    currency: order.currency,
    ...(order.metadata ? { metadata: order.metadata } : {}),
    priority: order.priority,
    scheduledFor: order.notBefore?.toISOString() ?? null,
    attempts: order.attempts,
    lastError: order.lastError,
    history: order.history.map((h) => ({
      status: h.status,
      at: h.at.toISOString(),
      ...(h.attempt !== undefined ? { attempt: h.attempt } : {}),
      ...(h.reason !== undefined ? { reason: h.reason } : {}),
      ...(h.by !== undefined ? { by: h.by } : {}),
      ...(h.step !== undefined ? { step: h.step } : {}),
      ...(h.action !== undefined ? { action: h.action } : {}),
      ...(h.ref !== undefined ? { ref: h.ref } : {}),
    })),
    steps: Object.fromEntries(
      STEP_NAMES.flatMap((name) => {
        const c = order.steps?.[name];
        return c ? [[name, { status: c.status, at: c.at.toISOString(), ...(c.ref ? { ref: c.ref } : {}) }]] : [];
      }),
    ) as Partial<Record<StepName, { status: StepCheckpoint['status']; at: string; ref?: string }>>,
    rejectionReason: order.rejectionReason ?? null,
    createdAt: order.createdAt.toISOString(),
    updatedAt: order.updatedAt.toISOString(),
    processedAt: order.processedAt?.toISOString() ?? null,
    failedAt: order.failedAt?.toISOString() ?? null,
  };
}

export type OrderView = ReturnType<typeof toOrderView>;
