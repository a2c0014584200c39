import { SpanKind, SpanStatusCode, isSpanContextValid, trace, type Span } from '@opentelemetry/api';
import { DelayedError, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Counter, Histogram } from 'prom-client';
import { extractTraceContext, type LogContext, type Logger, type ProcessOrderJobData } from '#common';
import type { SagaStepEvent } from '../saga/order-saga.js';
import {
  AttemptAbandonedError,
  OrderNotFoundError,
  WaitForProviderError,
  type OrderProcessingService,
} from '../services/order-processing-service.js';
import type { RestartSeries } from './job-series.js';

/** The most often a running job's progress is written (see `progressOf`). */
export const PROGRESS_EVERY_MS = 250;

export interface ProcessorMetrics {
  readonly jobs: Counter<'outcome'>;
  readonly duration: Histogram<'outcome'>;
}

/**
 * Job → service: works out the job's attempt in its series, runs it in the job's log context and in a `process-order`
 * span whose parent is the span that added the job (the api's request, from the job's `trace`
 * headers), maps errors for BullMQ. Without a tracing SDK the span is a no-op.
 */
export function createOrderProcessor(deps: {
  readonly service: OrderProcessingService;
  readonly logger: Logger;
  readonly logContext: LogContext;
  readonly metrics: ProcessorMetrics;
  /** Gives a job a fresh series of attempts (see job-series.ts). */
  readonly restartSeries: RestartSeries;
  /** Told of each saga step that ends (step metrics); it must not throw. */
  readonly onStep?: (event: SagaStepEvent) => void;
}) {
  const { service, logger, logContext, metrics } = deps;
  // A proxy: it follows whichever tracer provider is registered, now or later (none: no-op spans).
  const tracer = trace.getTracer('order-fleet/worker');
  return (job: Job<ProcessOrderJobData>, token?: string, signal?: AbortSignal): Promise<string> =>
    tracer.startActiveSpan(
      'process-order',
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'bullmq',
          'messaging.operation.type': 'process',
          'messaging.destination.name': job.queueName,
          'messaging.message.id': job.id ?? job.data.orderId,
          'order.id': job.data.orderId,
        },
      },
      extractTraceContext(job.data.trace),
      async (span) => {
        try {
          return await processJob(job, token, signal, span);
        } catch (err) {
          // A hand-back at shutdown is no failure of the order.
          if (!(err instanceof WaitingError)) {
            span.recordException(err instanceof Error ? err : String(err));
            span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
          }
          throw err;
        } finally {
          span.end();
        }
      },
    );

  async function processJob(
    job: Job<ProcessOrderJobData>,
    token: string | undefined,
    signal: AbortSignal | undefined,
    span: Span,
  ): Promise<string> {
    const maxAttempts = job.opts.attempts ?? 1;
    // A dead job retried as it is (Bull Board's Retry keeps attemptsMade) would get one run and no
    // back-off. Operators expect a retry to mean "try again properly", and the DLQ API resets the
    // counters, so the worker gives such a job a fresh series of attempts too.
    if (job.attemptsMade >= maxAttempts && token) return restart(job, token, span, 'job past its attempts');
    const jobAttempt = job.attemptsMade + 1;
    const spanContext = span.spanContext();
    const fields = {
      correlationId: job.data.correlationId,
      orderId: job.data.orderId,
      jobId: job.id,
      // The public log field and span attribute keep their name: it is the job's attempt in its series.
      attempt: jobAttempt,
      // Joins the log lines of the job to its trace when tracing is on.
      traceId: isSpanContextValid(spanContext) ? spanContext.traceId : undefined,
    };
    span.setAttribute('job.attempt', jobAttempt);
    return logContext.run(fields, async () => {
      const end = metrics.duration.startTimer();
      const isLastAttempt = jobAttempt >= maxAttempts;
      const progress = progressOf(job);
      try {
        const outcome = await service.attempt({
          orderId: job.data.orderId,
          jobId: job.id ?? job.data.orderId,
          jobAttempt,
          isLastAttempt,
          signal,
          onStep: progress.onStep,
          retriedBy: job.data.retriedBy,
        });
        if (outcome === 'restart_series' && token) {
          end({ outcome });
          return await restart(job, token, span, 'dead order taken mid-series');
        }
        end({ outcome });
        metrics.jobs.inc({ outcome });
        span.setAttribute('job.outcome', outcome);
        logger.info({ outcome }, 'job done');
        return outcome;
      } catch (err) {
        if (err instanceof AttemptAbandonedError && token) {
          // Shutdown ran past its bound: hand the job straight back to the wait list (no attempt
          // spent, no wait for the lock to expire) so another worker takes it over at once.
          end({ outcome: 'handed_back' });
          metrics.jobs.inc({ outcome: 'handed_back' });
          span.setAttribute('job.outcome', 'handed_back');
          logger.warn('attempt abandoned at shutdown; job handed back to the queue');
          await job.moveToWait(token);
          throw new WaitingError();
        }
        if (err instanceof WaitForProviderError && token) {
          // The breaker is open: the job waits for it in the delayed set; moving it there spends no attempt.
          end({ outcome: 'waiting_provider' });
          metrics.jobs.inc({ outcome: 'waiting_provider' });
          span.setAttribute('job.outcome', 'waiting_provider');
          logger.warn(
            { delayMs: err.delayMs },
            'payment provider unavailable; job delayed without spending an attempt',
          );
          await job.moveToDelayed(Date.now() + err.delayMs, token);
          throw new DelayedError();
        }
        // The job is dead when no retry follows; the service already sent the order down onJobDead.
        const outcome = isLastAttempt || err instanceof OrderNotFoundError ? 'dead' : 'failed_retry';
        end({ outcome });
        metrics.jobs.inc({ outcome });
        span.setAttribute('job.outcome', outcome);
        logger.warn(
          { err, outcome, maxAttempts },
          outcome === 'dead' ? 'job dead-lettered' : 'attempt failed; retry scheduled',
        );
        if (err instanceof OrderNotFoundError) throw new UnrecoverableError(err.message);
        throw err;
      } finally {
        progress.flush();
      }
    });
  }

  /**
   * Each saga step that ends is the job's progress (Bull Board shows it with the job), and each one not
   * simply done a line of the job's log; both best effort (a Redis hiccup must not fail the order's step).
   * The progress is the latest step's, written at most once per {@link PROGRESS_EVERY_MS} while the job
   * runs and once more, the last step's, when it ends: an order whose steps take a few milliseconds
   * costs one progress write, not one per step (each is a Redis script), and the board is never more
   * than that interval behind a running job.
   */
  function progressOf(job: Job<ProcessOrderJobData>) {
    let latest: { step: string; outcome: string } | undefined;
    let timer: NodeJS.Timeout | undefined;
    const write = () => {
      clearTimeout(timer);
      timer = undefined;
      if (!latest) return;
      void job.updateProgress(latest).catch(() => undefined);
      latest = undefined;
    };
    return {
      onStep(event: SagaStepEvent) {
        deps.onStep?.(event);
        latest = { step: event.step, outcome: event.outcome };
        timer ??= setTimeout(write, PROGRESS_EVERY_MS).unref();
        // The job's log keeps what an operator looks for (a refusal, a failure, an undo); a step done is
        // in the progress already, and logging it too would cost three more Redis scripts per order.
        if (event.outcome !== 'done') {
          void job.log(`${event.step} ${event.outcome} in ${Math.round(event.ms)} ms`).catch(() => undefined);
        }
      },
      /** The job's attempt ended: its last step is written now. */
      flush: write,
    };
  }

  /** Restarts the job's series (public BullMQ API), then tells the worker the job went back to waiting. */
  async function restart(job: Job<ProcessOrderJobData>, token: string, span: Span, why: string): Promise<never> {
    metrics.jobs.inc({ outcome: 'restart_series' });
    span.setAttribute('job.outcome', 'restart_series');
    logger.warn(
      { orderId: job.data.orderId, jobId: job.id, attemptsMade: job.attemptsMade, why },
      'dead job retried as it was; its series of attempts starts again',
    );
    await deps.restartSeries(job, token);
    throw new WaitingError();
  }
}
