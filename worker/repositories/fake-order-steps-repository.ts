import {
  CHECKPOINT_STATUSES,
  COMPENSATION_STATUSES,
  HISTORY_LIMIT,
  type Order,
  type OrderStatus,
  type StepCheckpoint,
  type StepName,
} from '#common';
import type { SagaOrderPort } from '../saga/ports.js';
import { StepRecordRefusedError } from './order-steps-repository.js';

/**
 * An in-memory {@link SagaOrderPort} over the same order store as the fake order repository (for unit
 * tests of the processing service): the same statuses allow the same records as in MongoDB.
 */
export function createFakeOrderStepsRepository(orders: Map<string, Order>): SagaOrderPort {
  const record = (
    orderId: string,
    step: StepName,
    action: StepCheckpoint['status'],
    statuses: readonly OrderStatus[],
    ref?: string,
  ): Promise<void> => {
    const order = orders.get(orderId);
    if (!order || !statuses.includes(order.status)) {
      return Promise.reject(new StepRecordRefusedError(orderId, step, action));
    }
    const at = new Date();
    const refs = ref !== undefined ? { ref } : {};
    orders.set(orderId, {
      ...order,
      steps: { ...order.steps, [step]: { status: action, at, ...refs } },
      updatedAt: at,
      history: [...order.history, { status: order.status, at, step, action, ...refs }].slice(-HISTORY_LIMIT),
    });
    return Promise.resolve();
  };
  return {
    checkpoint: (orderId, step, ref) => record(orderId, step, 'done', CHECKPOINT_STATUSES, ref),
    compensated: (orderId, step, ref) => record(orderId, step, 'compensated', COMPENSATION_STATUSES, ref),
  };
}
