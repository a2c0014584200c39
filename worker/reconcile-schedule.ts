import { Queue, Worker } from 'bullmq';
import type { RedisClient } from '#common';
import type { Counter } from 'prom-client';
import { withTimeout, RECONCILE_JOB, RECONCILE_QUEUE, RECONCILE_SCHEDULER_ID, type Config, type Logger } from '#common';
import type { ReconcileReport, Reconciler } from './services/reconciler-service.js';
import {
  LOCK_DURATION_MS,
  MAX_STALLED_COUNT,
  RECONCILE_TICK_TIMEOUT_FLOOR_MS,
  STALLED_INTERVAL_MS,
} from './settings.js';

/** The shortest bound on one upsert of the schedule (the interval, when longer). */
const UPSERT_TIMEOUT_FLOOR_MS = 5000;
/** The shortest wait of a due tick before its consumer counts as parked (3 intervals, when longer). */
const STUCK_FLOOR_MS = 30_000;

export interface ReconcileSchedule {
  /** Starts the tick worker and keeps the schedule in Redis (upserted now and once per interval). */
  start(): Promise<void>;
  /** Stops ticking; a tick still running after `timeoutMs` is abandoned (its job runs again later). */
  close(timeoutMs: number): Promise<void>;
  /** The BullMQ worker taking this process's ticks now (a new one after a restart; see `checkConsumer`). */
  consumer(): Worker;
  /**
   * Restarts this process's tick consumer when the due tick has waited `stuckAfterMs` although no tick
   * is running and the queue is not paused; says whether it did. Runs once per interval by itself.
   */
  checkConsumer(): Promise<boolean>;
}

/**
 * Whether the tick that fell due at `nextDueAt` is overdue: no worker of the fleet took it for
 * `stuckAfterMs` although nothing stops one from taking it (no tick running, the queue not paused). A
 * live consumer takes a due tick within BullMQ's longest block (10 s) and a second; one that has not
 * for much longer is parked.
 */
export function tickOverdue(state: {
  readonly nextDueAt: number | undefined;
  readonly active: number;
  readonly paused: boolean;
  readonly now: number;
  readonly stuckAfterMs: number;
}): boolean {
  if (state.nextDueAt === undefined || state.active > 0 || state.paused) return false;
  return state.now - state.nextDueAt > state.stuckAfterMs;
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
  /** How long one tick may run before it is abandoned (default: RECONCILE_TICK_TIMEOUT_FLOOR_MS, or 4 intervals when longer). */
  readonly tickTimeoutMs?: number;
  /** How long a due tick may wait untaken before this process restarts its consumer (default: max(30 s, 3 intervals)). */
  readonly stuckAfterMs?: number;
}): ReconcileSchedule {
  const { connection, config, reconciler, logger } = deps;
  const findings = deps.metrics.reconcilerFindings;
  const tickTimeoutMs = deps.tickTimeoutMs ?? Math.max(RECONCILE_TICK_TIMEOUT_FLOOR_MS, 4 * config.reconcileIntervalMs);
  const stuckAfterMs = deps.stuckAfterMs ?? Math.max(STUCK_FLOOR_MS, 3 * config.reconcileIntervalMs);
  const queue = new Queue(RECONCILE_QUEUE, { connection, prefix: config.queuePrefix });
  /** The tick this worker is running, if any (what a close waits for, within its bound). */
  let running: Promise<ReconcileReport> | undefined;
  let closing = false;

  const processTick = async () => {
    // Shutting down: the job completes without a tick (the scheduler has already queued the next).
    if (closing) return undefined;
    // Ticks run one at a time across the fleet (global concurrency 1), so a tick that hangs (a call
    // on a dead node's connection) would stop every later one: past the bound it is abandoned and
    // its job fails. What it still does afterwards is harmless: every step of a tick is idempotent.
    const tick = withTimeout(
      reconciler.tick(),
      tickTimeoutMs,
      `the reconcile tick did not finish within ${tickTimeoutMs} ms; abandoned, the next tick goes on`,
    );
    running = tick;
    let report: ReconcileReport;
    try {
      report = await tick;
    } finally {
      running = undefined;
    }
    findings.inc({ kind: 'unqueued' }, report.unqueued);
    findings.inc({ kind: 'missing_job' }, report.missingJob);
    findings.inc({ kind: 'failed_job' }, report.failedJob);
    findings.inc({ kind: 'event_readded' }, report.eventReadded);
    findings.inc({ kind: 'compensation_due' }, report.compensationDue);
    return report;
  };

  function startConsumer(): Worker {
    const w = new Worker(RECONCILE_QUEUE, processTick, {
      connection,
      prefix: config.queuePrefix,
      concurrency: 1,
      autorun: false,
      name: `${deps.workerId}:reconciler`,
      // The orders queue's lock and stall settings. With one tick at a time, a tick whose worker died
      // (SIGKILL), or whose finish was lost in a Redis failover, holds the only slot until the stalled
      // check hands it back: within about LOCK_DURATION_MS + STALLED_INTERVAL_MS (15 s) instead of
      // BullMQ's default 30 + 30 s, during which no tick runs and no lost job is re-added.
      lockDuration: LOCK_DURATION_MS,
      stalledInterval: STALLED_INTERVAL_MS,
      maxStalledCount: MAX_STALLED_COUNT,
    });
    w.on('error', (err) => logger.error({ err }, 'reconciler worker error'));
    w.on('failed', (_job, err) => logger.error({ err }, 'reconcile tick failed; the next tick retries'));
    void w.run().catch((err: unknown) => logger.error({ err }, 'reconciler loop stopped'));
    return w;
  }
  let worker: Worker | undefined;
  let lastRestart = 0;

  /**
   * The consumer's guard. Twice in about 60 runs of a Cluster failover under load (the slot owner
   * SIGKILLed), both workers' tick consumers stopped taking jobs for good while their orders consumers
   * went on: the due tick sat in `wait` with nothing active, so no order left unqueued was ever
   * re-added. BullMQ relies on ioredis to reconnect its blocking connection, and its maintainers' advice
   * for a worker left without one is to close it and create another; that is done here, at most once
   * per `stuckAfterMs`. A restart costs one blocking connection.
   */
  async function checkConsumer(): Promise<boolean> {
    if (closing || !worker || running) return false;
    const bound = Math.max(UPSERT_TIMEOUT_FLOOR_MS, config.reconcileIntervalMs);
    const [scheduler, active, paused] = await withTimeout(
      Promise.all([queue.getJobScheduler(RECONCILE_SCHEDULER_ID), queue.getActiveCount(), queue.isPaused()]),
      bound,
      'the reconcile queue did not answer in time',
    );
    const now = Date.now();
    if (!tickOverdue({ nextDueAt: scheduler?.next, active, paused, now, stuckAfterMs })) return false;
    if (now - lastRestart < stuckAfterMs) return false;
    lastRestart = now;
    logger.warn(
      { waitingMs: now - (scheduler?.next ?? now), stuckAfterMs },
      'the due reconcile tick has not been taken although none is running; restarting this process’s tick consumer (a Redis failover can leave its blocking connection parked)',
    );
    const parked = worker;
    worker = startConsumer();
    // Not awaited: a parked consumer's close can wait on the very connection that is parked.
    void parked.close(true).catch(() => undefined);
    return true;
  }

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
      worker = startConsumer();
      await worker.waitUntilReady();
      await ensureSchedule();
      timer = setInterval(() => {
        void ensureSchedule();
        void checkConsumer().catch((err: unknown) =>
          logger.debug({ err }, 'could not check the reconcile consumer; checking next interval'),
        );
      }, config.reconcileIntervalMs);
      timer.unref();
    },
    consumer() {
      if (!worker) throw new Error('the reconcile schedule has not started');
      return worker;
    },
    checkConsumer,
    async close(timeoutMs) {
      clearInterval(timer);
      closing = true;
      // Waits for the running tick here, not with a bounded worker.close(): once a graceful close has
      // begun, BullMQ's close(true) returns that same close, which waits for the tick however long.
      const finished = await withTimeout(
        (running ?? Promise.resolve()).then(
          () => true,
          () => true,
        ),
        timeoutMs,
        'reconcile tick still running',
      ).catch(() => false);
      if (!finished) {
        logger.warn(
          { timeoutMs },
          'reconcile tick still running at shutdown; abandoned (its job runs again once the stalled check hands it back)',
        );
      }
      await worker?.close(!finished).catch(() => undefined);
      await queue.close().catch(() => undefined);
    },
  };
}
