import { UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from '#common';

/** The failed reason a restarted job carries for the moment between its two moves. */
export const SERIES_RESTART = 'series restarted: a dead job was retried as it was; its attempts start again';

/** Gives an active job a fresh series of attempts; the caller then throws BullMQ's `WaitingError`. */
export type RestartSeries = (job: Job, token: string) => Promise<void>;

/**
 * Resets a job's attempt counters through BullMQ's public API only. BullMQ resets them in one place,
 * `Job.retry(state, { resetAttemptsMade, resetAttemptsStarted })`, and only for a finished job; an
 * active one is first finished as failed (`UnrecoverableError`, so no back-off retry is scheduled
 * instead) while this worker holds its lock, then retried with both counters at 0. The job goes to
 * the wait list and its next run is attempt 1 of a full series with back-off. The worker must leave
 * the job alone afterwards (the processor throws `WaitingError`).
 */
export function createSeriesRestart({ logger }: { readonly logger: Logger }): RestartSeries {
  return async (job, token) => {
    await job.moveToFailed(new UnrecoverableError(SERIES_RESTART), token);
    try {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    } catch (err) {
      // Someone else retried it between our two moves (the DLQ API, the board again): queued is
      // what we wanted. Anything else leaves a dead job in the failed set, where an operator sees it.
      const state = await job.getState().catch(() => 'unknown');
      if (state !== 'failed') return;
      logger.error({ err, jobId: job.id }, 'could not restart the job series; the job stays in the failed set');
    }
  };
}
