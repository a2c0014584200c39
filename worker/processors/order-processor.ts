import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Counter, Histogram } from 'prom-client';
import type { LogContext, Logger, ProcessOrderJobData } from '#common';
import {
  AttemptAbandonedError,
  OrderNotFoundError,
  type OrderProcessingService,
} from '../services/order-processing-service.js';

export interface ProcessorMetrics {
  readonly jobs: Counter<'outcome'>;
  readonly duration: Histogram<'outcome'>;
}

/** Job → service: works out the attempt, runs it in the job's log context, maps errors for BullMQ. */
export function createOrderProcessor(deps: {
  readonly service: OrderProcessingService;
  readonly logger: Logger;
  readonly logContext: LogContext;
  readonly metrics: ProcessorMetrics;
  /** Sets the job's attempts-made counter back to 0, in Redis and on the job object. */
  readonly resetAttempts: (job: Job<ProcessOrderJobData>) => Promise<void>;
}) {
  const { service, logger, logContext, metrics } = deps;
  return async (job: Job<ProcessOrderJobData>, token?: string, signal?: AbortSignal): Promise<string> => {
    const maxAttempts = job.opts.attempts ?? 1;
    // A dead job retried as it is (Bull Board's Retry keeps attemptsMade) would get one run and no
    // back-off. Operators expect a retry to mean "try again properly", and the DLQ API resets the
    // counters, so the worker gives such a job a fresh series of attempts too.
    const revived = job.attemptsMade >= maxAttempts;
    if (revived) await deps.resetAttempts(job);
    const attempt = job.attemptsMade + 1;
    const fields = {
      correlationId: job.data.correlationId,
      orderId: job.data.orderId,
      jobId: job.id,
      attempt,
    };
    return logContext.run(fields, async () => {
      const end = metrics.duration.startTimer();
      try {
        const outcome = await service.attempt({
          orderId: job.data.orderId,
          jobId: job.id ?? job.data.orderId,
          attempt,
          isLastAttempt: attempt >= maxAttempts,
          claimReason: revived ? 'dead job retried from the dashboard; attempts start again' : undefined,
          signal,
        });
        end({ outcome });
        metrics.jobs.inc({ outcome });
        logger.info({ outcome }, 'job done');
        return outcome;
      } catch (err) {
        if (err instanceof AttemptAbandonedError && token) {
          // Shutdown ran past its bound: hand the job straight back to the wait list (no attempt
          // spent, no wait for the lock to expire) so another worker takes it over at once.
          end({ outcome: 'handed_back' });
          metrics.jobs.inc({ outcome: 'handed_back' });
          logger.warn('attempt abandoned at shutdown; job handed back to the queue');
          await job.moveToWait(token);
          throw new WaitingError();
        }
        const outcome = attempt >= maxAttempts || err instanceof OrderNotFoundError ? 'dead' : 'failed_retry';
        end({ outcome });
        metrics.jobs.inc({ outcome });
        logger.warn(
          { err, outcome, maxAttempts },
          outcome === 'dead' ? 'job dead-lettered' : 'attempt failed; retry scheduled',
        );
        if (err instanceof OrderNotFoundError) throw new UnrecoverableError(err.message);
        throw err;
      }
    });
  };
}
