import { AppError } from '#common';
import { QueueUnavailableError } from '../repositories/order-jobs.js';

/**
 * Runs a queue call for an operator's route: without Redis nothing is known (or changed), so say so
 * (503 SERVICE_UNAVAILABLE with Retry-After), never "empty" or "done".
 */
export async function orUnavailable<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof QueueUnavailableError) {
      throw new AppError('SERVICE_UNAVAILABLE', 'the queue (Redis) is not reachable; retry later', { cause: err });
    }
    throw err;
  }
}
