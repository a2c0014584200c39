import type { Order, OrderStatus, RejectionReason } from './order.js';
import { canTransition, type TransitionRequest } from './state-machine.js';

/**
 * Why a dead order runs again when its job was retried as it was (Bull Board's Retry), not through
 * the DLQ API's reprocess: the worker restarts the job's series, so its attempts start again.
 */
export const DEAD_JOB_RETRIED_REASON = 'dead job retried from the dashboard; attempts start again';

/**
 * An operator's name, as history entries (`by`), audit records and dashboard accounts carry it: 1–64
 * letters, digits and `_ . @ -` (no spaces or control characters, so it is safe in logs and headers).
 */
export const OPERATOR_NAME_PATTERN = /^[A-Za-z0-9_.@-]{1,64}$/;

/** The prefix of every reprocess's history reason (the DLQ service recognises a repeated call by it). */
export const REPROCESS_REASON = 'reprocess requested';

/**
 * A named move: `to` from exactly `from`, each pair checked against the state machine once, when this
 * module loads, so a move the state machine does not allow fails at start, not in production.
 */
function move(to: OrderStatus, from: readonly OrderStatus[]) {
  const illegal = from.filter((s) => !canTransition(s, to));
  if (illegal.length > 0) throw new Error(`order move ${illegal.join(',')} -> ${to} is not in the state machine`);
  return (extra: Omit<TransitionRequest, 'to' | 'from'> = {}): TransitionRequest => ({ ...extra, to, from });
}

const toProcessing = move('PROCESSING', ['PENDING', 'PROCESSING']);
const fromDeadToProcessing = move('PROCESSING', ['FAILED']);
const toProcessed = move('PROCESSED', ['PROCESSING']);
const backToPending = move('PENDING', ['PROCESSING']);
const toFailed = move('FAILED', ['PROCESSING']);
const toRejected = move('REJECTED', ['PROCESSING']);
const toCancelled = move('CANCELLED', ['PENDING', 'FAILED']);
const reprocessed = move('PENDING', ['FAILED']);

/**
 * The order's named moves, the only ones the code makes: each returns the {@link TransitionRequest}
 * a repository executes as one atomic conditional update. `jobAttempt` is the job's attempt in its
 * current BullMQ series (1-based); it is what `history[].attempt` records. A claim also adds one to
 * the order's `attempts` (its count of claims).
 */
export const orderMoves = {
  /** An attempt takes the order: PENDING, or PROCESSING left by a crashed or stalled attempt. */
  claim: (jobAttempt: number) => toProcessing({ jobAttempt }),
  /** The first attempt of a fresh series takes a dead order whose job was retried as it was. */
  claimDead: (jobAttempt: number, by?: string) =>
    fromDeadToProcessing({ jobAttempt, reason: DEAD_JOB_RETRIED_REASON, ...(by ? { by } : {}) }),
  /**
   * The workflow's last step: the sale is made, and this same update writes `steps.confirm`, so the
   * order is never confirmed without being PROCESSED (terminal).
   */
  complete: (at: Date = new Date()) => toProcessed({ at, set: { 'steps.confirm': { status: 'done', at } } }),
  /** A business refusal (out of stock, payment declined): terminal, not a dead letter, never retried. */
  reject: (reason: RejectionReason, detail: string) =>
    toRejected({ reason: `${reason}: ${detail}`, set: { rejectionReason: reason } }),
  /** The attempt failed and a retry of the job follows. */
  scheduleRetry: (error: string) => backToPending({ reason: error, set: { lastError: error } }),
  /** The job is dead (attempts spent, unrecoverable, stalled out): the order is the dead letter. */
  fail: (error: string) => toFailed({ reason: error, set: { lastError: error } }),
  /**
   * The client cancelled it through the API (terminal). `compensationDue` marks it until what it may
   * still hold is undone: the worker clears it after compensating, the reconciler for an order that
   * holds nothing, and until then the reconciler makes sure the order's job will run.
   */
  cancel: () => toCancelled({ reason: 'cancelled through the API', set: { compensationDue: true } }),
  /** An operator brought a dead order back through the DLQ API (or its CLI); `by` names the operator. */
  reprocess: (actor: string, why?: string) =>
    reprocessed({ reason: `${REPROCESS_REASON} by ${actor}${why ? `: ${why}` : ''}`, by: actor }),
} as const;

/** True when the order left FAILED through a reprocess and has not failed again or finished since. */
export function reprocessedSinceLastFailure(order: Order): boolean {
  if (order.status !== 'PENDING' && order.status !== 'PROCESSING') return false;
  const lastFailed = order.history.findLastIndex((h) => h.status === 'FAILED');
  const lastReprocess = order.history.findLastIndex((h) => h.reason?.startsWith(REPROCESS_REASON) ?? false);
  return lastReprocess > lastFailed;
}
