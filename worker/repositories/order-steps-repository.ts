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
export function createOrderStepsRepository({ models }: { readonly models: Pick<OrderModels, 'Order'> }): SagaOrderPort {
  const { Order: OrderModel } = models;

  async function record(
    orderId: string,
    step: StepName,
    action: StepCheckpoint['status'],
    statuses: readonly OrderStatus[],
    ref?: string,
  ): Promise<void> {
    const at = new Date();
    for (const status of statuses) {
      const spec = buildStepRecord({ step, action, status, ref, at });
      // Straight to the driver: the filter and update are ours, built from validated values.
      const result = await OrderModel.collection.updateOne({ _id: orderId, ...spec.filter } as never, spec.update);
      if (result.matchedCount === 1) return;
    }
    throw new StepRecordRefusedError(orderId, step, action);
  }

  return {
    checkpoint: (orderId, step, ref) => record(orderId, step, 'done', CHECKPOINT_STATUSES, ref),
    compensated: (orderId, step, ref) => record(orderId, step, 'compensated', COMPENSATION_STATUSES, ref),
  };
}
