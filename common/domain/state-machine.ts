import { HISTORY_LIMIT, REASON_LIMIT, type HistoryEntry, type Order, type OrderStatus } from './order.js';

/** Every legal transition, and nothing else (docs/design.md, "State machine"). */
export const TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = Object.freeze({
  PENDING: ['PROCESSING', 'CANCELLED'],
  PROCESSING: ['PROCESSING', 'PROCESSED', 'PENDING', 'FAILED', 'REJECTED'],
  FAILED: ['PROCESSING', 'PENDING', 'CANCELLED'],
  PROCESSED: [],
  REJECTED: [],
  CANCELLED: [],
});

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The states an order may be in for a move to `to` to be legal. */
export function sourcesOf(to: OrderStatus): OrderStatus[] {
  return (Object.keys(TRANSITIONS) as OrderStatus[]).filter((from) => canTransition(from, to));
}

export interface TransitionRequest {
  readonly to: OrderStatus;
  /** The states the caller expects; each must be a legal source of `to`. Defaults to every legal source. */
  readonly from?: readonly OrderStatus[];
  readonly at?: Date;
  /**
   * Set on claims: the job's attempt in its BullMQ series that makes this claim, stored as the history
   * entry's `attempt`. (The claim also adds one to the order's `attempts`, its count of claims.)
   */
  readonly jobAttempt?: number;
  readonly reason?: string;
  /** The operator who asked for the move (a reprocess, a dashboard retry), stored as the entry's `by`. */
  readonly by?: string;
  /** Extra fields to set with the move (e.g. `lastError`). */
  readonly set?: Readonly<Record<string, unknown>>;
}

export interface TransitionSpec {
  readonly filter: { status: { $in: OrderStatus[] } };
  readonly update: Record<string, unknown>;
}

/**
 * Builds the one atomic conditional update that performs a transition: the filter names the states
 * it may come from, the update sets the new state and appends a bounded history entry. A claim
 * (any move into PROCESSING) adds one to `attempts`. Throws if a requested source is not legal.
 */
export function buildTransition(request: TransitionRequest): TransitionSpec {
  const from = request.from ? [...request.from] : sourcesOf(request.to);
  const illegal = from.filter((s) => !canTransition(s, request.to));
  if (illegal.length > 0 || from.length === 0) {
    throw new Error(`illegal transition ${illegal.join(',') || '∅'} -> ${request.to}`);
  }
  const at = request.at ?? new Date();
  const entry: Record<string, unknown> = { status: request.to, at };
  if (request.jobAttempt !== undefined) entry.attempt = request.jobAttempt;
  if (request.reason !== undefined) entry.reason = truncateReason(request.reason);
  if (request.by !== undefined) entry.by = request.by;
  const set: Record<string, unknown> = { ...request.set, status: request.to, updatedAt: at };
  if (request.to === 'PROCESSED') set.processedAt = at;
  if (request.to === 'FAILED') set.failedAt = at;
  const update: Record<string, unknown> = {
    $set: set,
    $push: { history: { $each: [entry], $slice: -HISTORY_LIMIT } },
  };
  if (request.to === 'PROCESSING') update.$inc = { attempts: 1 };
  return { filter: { status: { $in: from } }, update };
}

export function truncateReason(reason: string): string {
  return reason.length > REASON_LIMIT ? `${reason.slice(0, REASON_LIMIT - 1)}…` : reason;
}

/**
 * What the conditional update of {@link buildTransition} does, applied to a plain order: the order
 * after the move, or null when it is in none of the expected states. For in-memory fakes of the
 * repositories; it reads the very spec the repositories send to MongoDB, so the two cannot drift.
 */
export function applyTransitionSpec<T extends Order>(order: T, request: TransitionRequest): T | null {
  const spec = buildTransition(request);
  if (!spec.filter.status.$in.includes(order.status)) return null;
  const { $set, $push, $inc } = spec.update as {
    $set: Partial<Order>;
    $push: { history: { $each: HistoryEntry[]; $slice: number } };
    $inc?: { attempts: number };
  };
  // `$set` may name a field inside a sub-document (`steps.confirm`), as MongoDB allows.
  const set: Record<string, unknown> = {};
  for (const [key, value] of Object.entries($set)) {
    const [head, ...rest] = key.split('.');
    if (rest.length === 0) set[head] = value;
    else
      set[head] = { ...((set[head] ?? (order as Record<string, unknown>)[head]) as object), [rest.join('.')]: value };
  }
  return {
    ...order,
    ...set,
    attempts: order.attempts + ($inc?.attempts ?? 0),
    history: [...order.history, ...$push.history.$each].slice($push.history.$slice),
  };
}
