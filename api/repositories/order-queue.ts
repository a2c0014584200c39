import type { Queue } from 'bullmq';
import { PROCESS_ORDER_JOB, withTimeout, type ProcessOrderJobData } from '#common';

export type OrderQueue = ReturnType<typeof createOrderQueue>;

/**
 * The api's side of the `orders` queue. The job id is the order id, so adding the job of an order
 * twice leaves one job. `timeoutMs` bounds the call even while the connection is still opening.
 */
export function createOrderQueue({
  queue,
  timeoutMs,
}: {
  readonly queue: Queue<ProcessOrderJobData>;
  readonly timeoutMs: number;
}) {
  return {
    async enqueue(orderId: string, correlationId: string): Promise<void> {
      await withTimeout(
        queue.add(PROCESS_ORDER_JOB, { orderId, correlationId }, { jobId: orderId }),
        timeoutMs,
        `Redis did not take the job within ${timeoutMs} ms`,
      );
    },
  };
}
