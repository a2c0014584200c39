import { UnrecoverableError, type Job } from 'bullmq';
import type { Counter, Histogram } from 'prom-client';
import type { LogContext, Logger, ProcessOrderJobData } from '#common';
import { OrderNotFoundError, type OrderProcessingService } from '../services/order-processing-service.js';

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
}) {
  const { service, logger, logContext, metrics } = deps;
  return async (job: Job<ProcessOrderJobData>): Promise<string> => {
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
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
        });
        end({ outcome });
        metrics.jobs.inc({ outcome });
        logger.info({ outcome }, 'job done');
        return outcome;
      } catch (err) {
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
