import type { Job } from 'bullmq';
import type { Logger, ProcessOrderJobData } from '#common';
import type { FairShareMetrics } from './fair-metrics.js';
import type { FairShareStore } from './fair-share.js';

/** How often a worker registers its concurrency, and how long a registration outlives a dead worker. */
export const FLEET_HEARTBEAT_MS = 5000;
const FLEET_TTL_MS = 3 * FLEET_HEARTBEAT_MS;
/** The first guess of how long a slot is held, before this worker has measured any. */
const INITIAL_HOLD_MS = 100;

/** What a job gets at the gate: a slot to give back once it ends, or a time to wait (no slot free). */
export type FairEntry = { readonly waitMs: number } | { leave(): Promise<void> };

/** The fleet-wide per-customer max: the setting, or a quarter of the fleet's registered concurrency. */
export function maxActiveFor(fleetConcurrency: number, setting: number | undefined): number {
  return setting ?? Math.max(1, Math.floor(fleetConcurrency / 4));
}

/**
 * The worker's side of the fair share (see fair-share.ts): each job enters with its customer's slot or
 * is told to wait; a held slot's lease is renewed while the job runs, and released when it ends. The
 * worker registers its concurrency so every worker derives the same default max from the fleet's total.
 * Redis failing the check lets the job run without a slot (fairness is a bound on sharing, not a
 * guarantee worth stopping orders for), logged and counted.
 */
export function createFairGate(deps: {
  readonly store: FairShareStore;
  readonly workerId: string;
  readonly concurrency: number;
  /** MAX_ACTIVE_PER_CUSTOMER; undefined: a quarter of the fleet's concurrency. */
  readonly maxActive: number | undefined;
  /** A slot's lease: the job lock's duration, so a killed worker's slot lapses within the stall bound. */
  readonly leaseMs: number;
  readonly metrics: FairShareMetrics;
  readonly logger: Logger;
}) {
  const { store, workerId, concurrency, leaseMs, metrics, logger } = deps;
  let maxActive = maxActiveFor(concurrency, deps.maxActive);
  let holdMs = INITIAL_HOLD_MS;
  let heartbeat: NodeJS.Timeout | undefined;
  metrics.maxActive.set(maxActive);

  async function register(): Promise<void> {
    try {
      const total = await store.register(workerId, concurrency, FLEET_TTL_MS);
      maxActive = maxActiveFor(Math.max(total, concurrency), deps.maxActive);
      metrics.maxActive.set(maxActive);
    } catch (err) {
      logger.warn({ err }, 'could not register with the fleet; keeping the last per-customer max');
    }
  }

  function hold(customerId: string, jobId: string): FairEntry {
    const started = Date.now();
    metrics.slotsHeld.inc();
    const renewal = setInterval(() => {
      store.renew(customerId, jobId, leaseMs).catch((err: unknown) => logger.warn({ err }, 'slot lease not renewed'));
    }, leaseMs / 3);
    renewal.unref();
    return {
      async leave() {
        clearInterval(renewal);
        metrics.slotsHeld.dec();
        // A slow moving average: one odd job must not swing the pacing of every deferred one.
        holdMs = 0.9 * holdMs + 0.1 * (Date.now() - started);
        // Not released (Redis away): the lease lapses on its own.
        await store.release(customerId, jobId).catch((err: unknown) => logger.warn({ err }, 'slot not released'));
      },
    };
  }

  return {
    /** Registers this worker now and every FLEET_HEARTBEAT_MS. */
    async start(): Promise<void> {
      await register();
      heartbeat = setInterval(() => void register(), FLEET_HEARTBEAT_MS);
      heartbeat.unref();
    },
    /** Leaves the fleet register (best effort: the registration lapses anyway). */
    async close(): Promise<void> {
      clearInterval(heartbeat);
      await store.register(workerId, concurrency, 0).catch(() => undefined);
    },
    /** The per-customer max this worker applies now. */
    maxActive: () => maxActive,

    async enter(job: Job<ProcessOrderJobData>): Promise<FairEntry> {
      const { customerId } = job.data;
      const jobId = job.id ?? job.data.orderId;
      // Jobs added before the fair share existed carry no customer: they run as they did.
      if (!customerId) return { leave: () => Promise.resolve() };
      // Deferred jobs of a customer come back one per `spacing`: about the rate its slots free up.
      const spacingMs = Math.min(leaseMs, Math.max(1, Math.round(holdMs / maxActive)));
      let waitMs: number;
      try {
        waitMs = await store.acquire(customerId, jobId, { leaseMs, maxActive, spacingMs });
      } catch (err) {
        metrics.unchecked.inc();
        logger.warn({ err, jobId }, 'fair-share check failed; the job runs without a slot');
        return { leave: () => Promise.resolve() };
      }
      if (waitMs === 0) return hold(customerId, jobId);
      metrics.deferrals.inc();
      metrics.deferralWait.observe(waitMs / 1000);
      return { waitMs };
    },
  };
}

export type FairGate = ReturnType<typeof createFairGate>;
