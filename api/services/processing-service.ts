import type { Queue } from 'bullmq';
import type { Logger } from '#common';
import { boundedQueueCall } from '../repositories/order-jobs.js';
import { orUnavailable } from './queue-unavailable.js';
import type { AuditLog } from './audit-service.js';

/** The queues an operator may pause: the orders (processing) and the webhooks (deliveries). */
export const PAUSABLE_QUEUES = ['orders', 'notifications'] as const;
export type PausableQueue = (typeof PAUSABLE_QUEUES)[number];

export interface Operator {
  readonly actor: string;
  readonly role: string;
  readonly reason?: string;
  readonly requestId?: string;
}

export type ProcessingService = ReturnType<typeof createProcessingService>;

/**
 * Pause and resume processing fleet-wide: BullMQ's global pause (`Queue.pause()`), so every worker
 * stops taking new jobs (jobs already running finish) until resumed; jobs keep arriving and wait.
 * Each change is audited with who and why. Redis away → 503, fast.
 */
export function createProcessingService(deps: {
  readonly queues: Readonly<Record<PausableQueue, Queue>>;
  readonly audit: AuditLog;
  readonly logger: Logger;
  readonly timeoutMs: number;
}) {
  const { queues, audit, logger } = deps;
  const bounded = boundedQueueCall(deps.timeoutMs);

  async function change(queue: PausableQueue, pause: boolean, who: Operator) {
    const action = pause ? 'processing.pause' : 'processing.resume';
    const target = queues[queue];
    try {
      await orUnavailable(() => bounded(pause ? target.pause() : target.resume()));
    } catch (err) {
      await audit.record({ ...who, source: 'api', action, queue, outcome: 'failed', status: 503 });
      throw err;
    }
    logger.warn(
      { queue, actor: who.actor, reason: who.reason },
      pause ? `queue ${queue} paused: workers take no new jobs` : `queue ${queue} resumed`,
    );
    await audit.record({ ...who, source: 'api', action, queue, outcome: 'done', status: 200 });
    return { queue, paused: pause };
  }

  return {
    pause: (queue: PausableQueue, who: Operator) => change(queue, true, who),
    resume: (queue: PausableQueue, who: Operator) => change(queue, false, who),

    /** Whether each queue is paused. */
    async status(): Promise<Record<PausableQueue, { paused: boolean }>> {
      const [orders, notifications] = await orUnavailable(() =>
        Promise.all([bounded(queues.orders.isPaused()), bounded(queues.notifications.isPaused())]),
      );
      return { orders: { paused: orders }, notifications: { paused: notifications } };
    },
  };
}
