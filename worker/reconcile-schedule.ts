import { Queue, Worker } from 'bullmq';
import type { RedisClient } from '#common';
import type { Counter } from 'prom-client';
import { withTimeout, RECONCILE_JOB, RECONCILE_QUEUE, RECONCILE_SCHEDULER_ID, type Config, type Logger } from '#common';
import type { Reconciler } from './services/reconciler-service.js';

/** The shortest bound on one upsert of the schedule (the interval, when longer). */
const UPSERT_TIMEOUT_FLOOR_MS = 5000;

export interface ReconcileSchedule {
  /** Starts the tick worker and keeps the schedule in Redis (upserted now and once per interval). */
  start(): Promise<void>;
  /** Stops ticking; a tick still running after `timeoutMs` is abandoned (its job runs again later). */
  close(timeoutMs: number): Promise<void>;
}

/**
 * The reconciler's clock: the `orders-reconcile` queue, one job scheduler on it ticking every
 * RECONCILE_INTERVAL_MS, and the worker that runs each tick (one tick at a time across the fleet).
 */
export function createReconcileSchedule(deps: {
  readonly connection: RedisClient;
  readonly config: Pick<Config, 'queuePrefix' | 'reconcileIntervalMs'>;
  readonly workerId: string;
  readonly reconciler: Reconciler;
  readonly metrics: { readonly reconcilerFindings: Counter<'kind'> };
  readonly logger: Logger;
}): ReconcileSchedule {
  const { connection, config, reconciler, logger } = deps;
  const findings = deps.metrics.reconcilerFindings;
  const queue = new Queue(RECONCILE_QUEUE, { connection, prefix: config.queuePrefix });
  const worker = new Worker(
    RECONCILE_QUEUE,
    async () => {
      const report = await reconciler.tick();
      findings.inc({ kind: 'unqueued' }, report.unqueued);
      findings.inc({ kind: 'missing_job' }, report.missingJob);
      findings.inc({ kind: 'failed_job' }, report.failedJob);
      findings.inc({ kind: 'event_readded' }, report.eventReadded);
      findings.inc({ kind: 'compensation_due' }, report.compensationDue);
      return report;
    },
    { connection, prefix: config.queuePrefix, concurrency: 1, autorun: false, name: `${deps.workerId}:reconciler` },
  );
  worker.on('error', (err) => logger.error({ err }, 'reconciler worker error'));
  worker.on('failed', (_job, err) => logger.error({ err }, 'reconcile tick failed; the next tick retries'));

  // The schedule lives in Redis, so a Redis that restarts empty loses it: every worker upserts it
  // at start and once per interval (idempotent), so it comes back within one interval by itself.
  let upserting = false;
  async function ensureSchedule(): Promise<void> {
    if (upserting) return;
    upserting = true;
    try {
      // Bounded: during a Cluster failover a call can hang on a dead node's connection, and a
      // hung upsert must not keep every later one from running (the schedule would stay lost).
      await withTimeout(
        (async () => {
          // One tick at a time across the fleet: a tick slower than the interval must not overlap
          // the next one on another worker (they would redo each other's work).
          await queue.setGlobalConcurrency(1);
          await queue.upsertJobScheduler(
            RECONCILE_SCHEDULER_ID,
            { every: config.reconcileIntervalMs },
            { name: RECONCILE_JOB, opts: { removeOnComplete: 20, removeOnFail: 50 } },
          );
        })(),
        Math.max(UPSERT_TIMEOUT_FLOOR_MS, config.reconcileIntervalMs),
        'the reconcile schedule upsert did not finish in time',
      );
    } catch (err) {
      logger.warn({ err }, 'could not upsert the reconcile schedule; retrying next interval');
    } finally {
      upserting = false;
    }
  }
  let timer: NodeJS.Timeout | undefined;

  return {
    async start() {
      void worker.run().catch((err: unknown) => logger.error({ err }, 'reconciler loop stopped'));
      await worker.waitUntilReady();
      await ensureSchedule();
      timer = setInterval(() => void ensureSchedule(), config.reconcileIntervalMs);
      timer.unref();
    },
    async close(timeoutMs) {
      clearInterval(timer);
      await withTimeout(worker.close(), timeoutMs, 'reconciler did not stop').catch(() => worker.close(true));
      await queue.close().catch(() => undefined);
    },
  };
}
