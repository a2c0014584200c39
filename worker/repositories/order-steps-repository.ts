import {
  buildStepRecord,
  CHECKPOINT_STATUSES,
  COMPENSATION_STATUSES,
  type OrderModels,
  type OrderStatus,
  type StepCheckpoint,
  type StepName,
} from '#common';
import type { SagaOrderPort } from '../saga/ports.js';
import { singleOrderUpdates, type ApplyOrderUpdate } from './order-updates.js';

/** The order is in no status that allows the write: the run lost its order (cancelled, reclaimed). */
export class StepRecordRefusedError extends Error {
  constructor(orderId: string, step: StepName, action: StepCheckpoint['status']) {
    super(`order ${orderId} is in no status that allows recording ${step} ${action}`);
    this.name = 'StepRecordRefusedError';
  }
}

/**
 * The saga's records on the order (SagaOrderPort), each one conditional update built by the domain's
 * `buildStepRecord`. A compensation may be recorded in several statuses; they are tried in the order
 * a compensation most often meets them (PROCESSING first: an order compensated on its way to
 * REJECTED or FAILED), so the common case costs one command.
 */
export function createOrderStepsRepository({
  models,
  updates = singleOrderUpdates(models.Order.collection),
}: {
  readonly models: Pick<OrderModels, 'Order'>;
  /** How each conditional update goes out (batched with WORKER_BATCH_WRITES); default one updateOne each. */
  readonly updates?: ApplyOrderUpdate;
}): SagaOrderPort {
  async function record(
    orderId: string,
    step: StepName,
    action: StepCheckpoint['status'],
    statuses: readonly OrderStatus[],
    ref?: string,
  ): Promise<void> {
    const at = new Date();
    for (const status of statuses) {
      if (await updates({ id: orderId, ...buildStepRecord({ step, action, status, ref, at }) })) return;
    }
    throw new StepRecordRefusedError(orderId, step, action);
  }

  return {
    checkpoint: (orderId, step, ref) => record(orderId, step, 'done', CHECKPOINT_STATUSES, ref),
    compensated: (orderId, step, ref) => record(orderId, step, 'compensated', COMPENSATION_STATUSES, ref),
  };
}
