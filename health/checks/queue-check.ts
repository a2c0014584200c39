import type { Queue } from 'bullmq';
import { withTimeout, type ProcessOrderJobData } from '#common';

export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'] as const;

export interface QueueReport {
  readonly counts: Record<string, number>;
  readonly workers: number;
  /**
   * True while an operator has paused the queue (POST /admin/processing/pause, or the board): workers
   * take no new jobs. A deliberate state, not a fault: readiness stays 200.
   */
  readonly paused: boolean;
  /** When the oldest waiting job was added (ms since epoch); undefined when none waits. */
  readonly oldestWaitingAt?: number;
}

/** Job counts by state (one cheap Redis call per state, no scan of jobs), the live worker count, and whether it is paused. */
export function createQueueCheck({
  queue,
  timeoutMs,
}: {
  readonly queue: Queue<ProcessOrderJobData>;
  readonly timeoutMs: number;
}) {
  return async (): Promise<QueueReport> => {
    const [counts, workers, oldest, paused] = await withTimeout(
      // The oldest waiting job: the far end of the wait list (one LRANGE and one HGETALL).
      Promise.all([
        queue.getJobCounts(...QUEUE_STATES),
        queue.getWorkersCount(),
        queue.getJobs(['wait'], 0, 0, true),
        queue.isPaused(),
      ]),
      timeoutMs,
      `Redis did not report queue counts within ${timeoutMs} ms`,
    );
    return { counts, workers, paused, oldestWaitingAt: oldest[0]?.timestamp };
  };
}
