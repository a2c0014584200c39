import { HISTORY_LIMIT, type Order, type OrderStatus, type StepCheckpoint, type StepName } from './order.js';

/** True when a workflow step of the order is done and not yet undone (stock held, a charge standing). */
export const holdsEffects = (order: Pick<Order, 'steps'>): boolean =>
  order.steps !== undefined && Object.values(order.steps).some((c) => c?.status === 'done');

/** The statuses in which the workflow may record a step done (a claimed order only). */
export const CHECKPOINT_STATUSES: readonly OrderStatus[] = ['PROCESSING'];

/**
 * The statuses in which the workflow may record a step undone: PROCESSING (a declined charge, or an
 * order compensated on its way to REJECTED or FAILED), FAILED (a dead order compensated after it
 * died) and CANCELLED.
 */
export const COMPENSATION_STATUSES: readonly OrderStatus[] = ['PROCESSING', 'FAILED', 'CANCELLED'];

export interface StepRecordRequest {
  readonly step: StepName;
  readonly action: StepCheckpoint['status'];
  /** The status the order must be in; it is also the status the history entry carries. */
  readonly status: OrderStatus;
  readonly ref?: string;
  readonly at?: Date;
}

/**
 * One atomic conditional update recording a workflow step on the order: sets `steps.<step>` and
 * appends a history entry `{ status, at, step, action, ref? }`; matches only while the order is in
 * `status` (a run whose order was taken from it writes nothing). Throws for a status the action may
 * not be recorded in.
 */
export function buildStepRecord(request: StepRecordRequest): {
  readonly filter: { status: OrderStatus };
  readonly update: Record<string, unknown>;
} {
  const allowed = request.action === 'done' ? CHECKPOINT_STATUSES : COMPENSATION_STATUSES;
  if (!allowed.includes(request.status)) {
    throw new Error(`a step cannot be recorded ${request.action} while the order is ${request.status}`);
  }
  const at = request.at ?? new Date();
  const ref = request.ref !== undefined ? { ref: request.ref } : {};
  return {
    filter: { status: request.status },
    update: {
      $set: { [`steps.${request.step}`]: { status: request.action, at, ...ref }, updatedAt: at },
      $push: {
        history: {
          $each: [{ status: request.status, at, step: request.step, action: request.action, ...ref }],
          $slice: -HISTORY_LIMIT,
        },
      },
    },
  };
}
