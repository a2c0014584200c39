import { DelayedError, Worker } from 'bullmq';
import type { RedisClient } from '#common';
import type { Gauge } from 'prom-client';
import {
  withTimeout,
  ORDERS_QUEUE,
  type Config,
  type LogContext,
  type Logger,
  type ProcessOrderJobData,
} from '#common';
import type { FairGate } from './fairness/fair-gate.js';
import { createSeriesRestart } from './processors/job-series.js';
import { createOrderProcessor, type ProcessorMetrics } from './processors/order-processor.js';
import type { SagaStepEvent } from './saga/order-saga.js';
import type { OrderProcessingService } from './services/order-processing-service.js';
import { HAND_BACK_MS, LOCK_DURATION_MS, MAX_STALLED_COUNT, STALLED_INTERVAL_MS } from './settings.js';

/** BullMQ's failed reason for a job that stalled more than `maxStalledCount` times. */
const STALLED_OUT = /stalled more than allowable limit/;

export interface OrderWorker {
  readonly worker: Worker<ProcessOrderJobData>;
  /** Starts taking jobs; resolves once the worker is connected to Redis. */
  start(): Promise<void>;
  /**
   * Stops taking jobs, bounded in three tiers: wait up to `timeoutMs` for active jobs; past that,
   * abort them so each hands its job back to the wait list (up to 3 s); past that, close by force
   * (the stalled check hands the jobs back once their locks expire). True when every job finished.
   */
  close(timeoutMs: number): Promise<boolean>;
}

/** The BullMQ worker of the `orders` queue, with its event handlers and its bounded close. */
export function createOrderWorker(deps: {
  readonly connection: RedisClient;
  readonly config: Pick<Config, 'queuePrefix' | 'workerConcurrency'>;
  readonly workerId: string;
  /** Runs each attempt; its `onJobDead` also takes the orders of jobs that stalled out. */
  readonly service: OrderProcessingService;
  readonly metrics: ProcessorMetrics & { readonly active: Gauge };
  readonly logContext: LogContext;
  readonly logger: Logger;
  /** Told of each saga step that ends (the workflow's metrics). */
  readonly onStep?: (event: SagaStepEvent) => void;
  /** The per-customer fair share (README, "Fairness"); absent when FAIR_SHARE_KEY=off. */
  readonly fairGate?: FairGate;
}): OrderWorker {
  const { config, service, metrics, logger } = deps;
  const processor = createOrderProcessor({
    service,
    logger,
    logContext: deps.logContext,
    metrics,
    restartSeries: createSeriesRestart({ logger }),
    onStep: deps.onStep,
  });
  const worker = new Worker<ProcessOrderJobData, string>(
    ORDERS_QUEUE,
    // Counted around the processor itself: a job handed back or restarted emits no 'completed' or
    // 'failed', and a job failed for stalling never ran here.
    async (job, token, signal) => {
      const entry = await deps.fairGate?.enter(job);
      if (entry && 'waitMs' in entry && token) {
        // Its customer holds all its slots: the job waits its turn in the delayed set, no attempt spent.
        await job.moveToDelayed(Date.now() + entry.waitMs, token);
        throw new DelayedError();
      }
      metrics.active.inc();
      try {
        return await processor(job, token, signal);
      } finally {
        metrics.active.dec();
        // Queued, not awaited: the release goes out with this worker's next acquire (fair-gate.ts).
        if (entry && 'leave' in entry) entry.leave();
      }
    },
    {
      connection: deps.connection,
      prefix: config.queuePrefix,
      concurrency: config.workerConcurrency,
      name: deps.workerId,
      lockDuration: LOCK_DURATION_MS,
      stalledInterval: STALLED_INTERVAL_MS,
      maxStalledCount: MAX_STALLED_COUNT,
      autorun: false,
    },
  );
  worker.on('failed', (job, err) => {
    // A job that stalled too often fails without its processor running: bring the order along.
    if (!job || !STALLED_OUT.test(err.message)) return;
    logger.error({ orderId: job.data.orderId, jobId: job.id, err }, 'job failed after stalling; marking order FAILED');
    service
      .onJobDead(job.data.orderId, err.message)
      .catch((e: unknown) => logger.error({ err: e }, 'could not mark order FAILED'));
  });
  worker.on('error', (err) => logger.error({ err }, 'worker error'));

  return {
    worker,
    async start() {
      await deps.fairGate?.start();
      void worker.run().catch((err: unknown) => logger.error({ err }, 'worker loop stopped'));
      await worker.waitUntilReady();
    },
    async close(timeoutMs) {
      try {
        return await closeWorker(timeoutMs);
      } finally {
        await deps.fairGate?.close();
      }
    },
  };

  /** The bounded close in three tiers (see {@link OrderWorker.close}). */
  async function closeWorker(timeoutMs: number): Promise<boolean> {
    try {
      // close() waits for active jobs and has no bound of its own.
      await withTimeout(worker.close(), timeoutMs, `active jobs did not finish within ${timeoutMs} ms`);
      return true;
    } catch (err) {
      // Past the bound: abort the running attempts; each hands its job back to the wait list.
      logger.warn({ err }, 'shutdown bound reached; handing unfinished jobs back to the queue');
      worker.cancelAllJobs('shutdown');
      await withTimeout(worker.close(), HAND_BACK_MS, 'jobs did not hand back in time').catch(async () => {
        // Last resort: close by force; the stalled check hands the jobs back after the lock expires.
        await worker.close(true).catch(() => undefined);
      });
      return false;
    }
  }
}
