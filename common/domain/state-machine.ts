import { HISTORY_LIMIT, REASON_LIMIT, type OrderStatus } from './order.js';

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
  /** Set on claims: the attempt number this claim starts (it also increments `attempts`). */
  readonly attempt?: number;
  readonly reason?: string;
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
  if (request.attempt !== undefined) entry.attempt = request.attempt;
  if (request.reason !== undefined) entry.reason = truncateReason(request.reason);
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
