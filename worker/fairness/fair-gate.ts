import type { Job } from 'bullmq';
import type { Logger, ProcessOrderJobData } from '#common';
import type { FairShareMetrics } from './fair-metrics.js';
import type { FairShareStore, SlotReplies, SlotRelease, SlotRequest } from './fair-share.js';

/** How often a worker registers its concurrency, and how long a registration outlives a dead worker. */
export const FLEET_HEARTBEAT_MS = 5000;
const FLEET_TTL_MS = 3 * FLEET_HEARTBEAT_MS;
/** The first guess of how long a slot is held, before this worker has measured any. */
const INITIAL_HOLD_MS = 100;
/**
 * How long a slot's release waits for this worker's next acquire to go out with (one round trip for
 * both) before it is sent alone. A slot frees up to this much later than the job's end.
 */
export const RELEASE_LINGER_MS = 5;

/**
 * What a job gets at the gate: a slot to give back once it ends, or a time to wait (no slot free).
 * `leave()` returns at once: the release is queued (see {@link createFairGate}).
 */
export type FairEntry = { readonly waitMs: number } | { leave(): void };

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
 *
 * Releases are not sent alone at once: each Redis round trip costs the CPU-bound worker tens of µs.
 * A job's leave() queues its release; queued releases are written together with this worker's next
 * acquire (ZREMs first, then the script, before any reply is awaited), or alone after RELEASE_LINGER_MS, or at close(). A release that
 * fails is logged; the lease lapses on its own.
 *
 * Same-job re-entry (a retry, a stall takeover on this worker): a slot's member is the job id, so two
 * entries of one job on this worker share it. The release is queued only by the last of them to end
 * (counting those still waiting for their acquire's answer too), so no release is ever queued while an
 * entry of the job asks for or holds the slot. A later entry's acquire is therefore written after that
 * release, right after it (release first) or later on the same connection: the release
 * frees the old holding and the acquire takes the slot anew, never the reverse. Across workers nothing
 * changes: a stalled holder that ends after another worker took its job over still frees that slot.
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
  /** Releases not sent yet, oldest first, and the timer that sends them alone. */
  let queued: SlotRelease[] = [];
  let linger: NodeJS.Timeout | undefined;
  /** Round trips that carry releases, still in flight: close() waits for them. */
  const sending = new Set<Promise<void>>();
  /**
   * Per job (customer and id) on this worker: its entries that asked for or hold the slot, and whether
   * one of them held it (a release is owed once the last one ends).
   */
  const users = new Map<string, { count: number; held: boolean }>();
  let closed = false;

  function takeQueued(): SlotRelease[] {
    clearTimeout(linger);
    linger = undefined;
    const taken = queued;
    queued = [];
    return taken;
  }

  function reportReleases(releases: readonly SlotRelease[], released: readonly (Error | undefined)[]): void {
    // Not released (Redis away): the lease lapses on its own.
    released.forEach((err, i) => {
      if (err) logger.warn({ err, jobId: releases[i]?.jobId }, 'slot not released');
    });
  }

  /** One round trip: the releases, then the acquire when asked; the releases' errors are logged here. */
  function send(releases: readonly SlotRelease[], request?: SlotRequest): Promise<SlotReplies> {
    // Never rejects: each command's error comes back in its own reply.
    const replies = store.releaseThenAcquire(releases, request);
    if (releases.length > 0) {
      const reported = replies.then((r) => reportReleases(releases, r.released));
      sending.add(reported);
      void reported.finally(() => sending.delete(reported));
    }
    return replies;
  }

  function flush(): void {
    const releases = takeQueued();
    if (releases.length > 0) void send(releases);
  }

  function queueRelease(release: SlotRelease): void {
    queued.push(release);
    if (closed) {
      flush();
    } else if (!linger) {
      linger = setTimeout(flush, RELEASE_LINGER_MS);
      linger.unref();
    }
  }

  /** One entry of the job is done with the slot (left, or got none); the last one releases it if owed. */
  function done(key: string, release: SlotRelease): void {
    const use = users.get(key);
    if (!use || --use.count > 0) return;
    users.delete(key);
    if (use.held) queueRelease(release);
  }

  async function register(): Promise<void> {
    try {
      const total = await store.register(workerId, concurrency, FLEET_TTL_MS);
      maxActive = maxActiveFor(Math.max(total, concurrency), deps.maxActive);
      metrics.maxActive.set(maxActive);
    } catch (err) {
      logger.warn({ err }, 'could not register with the fleet; keeping the last per-customer max');
    }
  }

  function hold(key: string, slot: SlotRelease): FairEntry {
    const { customerId, jobId } = slot;
    const started = Date.now();
    metrics.slotsHeld.inc();
    const renewal = setInterval(() => {
      store.renew(customerId, jobId, leaseMs).catch((err: unknown) => logger.warn({ err }, 'slot lease not renewed'));
    }, leaseMs / 3);
    renewal.unref();
    return {
      leave() {
        clearInterval(renewal);
        metrics.slotsHeld.dec();
        // A slow moving average: one odd job must not swing the pacing of every deferred one.
        holdMs = 0.9 * holdMs + 0.1 * (Date.now() - started);
        done(key, slot);
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
    /**
     * Sends the queued releases (a stopping worker frees its slots at once; a job that ends later
     * releases without waiting), then leaves the fleet register (best effort: it lapses anyway).
     */
    async close(): Promise<void> {
      clearInterval(heartbeat);
      closed = true;
      flush();
      await Promise.all(sending);
      await store.register(workerId, concurrency, 0).catch(() => undefined);
    },
    /** The per-customer max this worker applies now. */
    maxActive: () => maxActive,

    async enter(job: Job<ProcessOrderJobData>): Promise<FairEntry> {
      const { customerId } = job.data;
      const jobId = job.id ?? job.data.orderId;
      // Jobs added before the fair share existed carry no customer: they run as they did.
      if (!customerId) return { leave: () => undefined };
      // Deferred jobs of a customer come back one per `spacing`: about the rate its slots free up.
      const spacingMs = Math.min(leaseMs, Math.max(1, Math.round(holdMs / maxActive)));
      const slot = { customerId, jobId };
      const key = `${customerId}:${jobId}`;
      const use = users.get(key) ?? { count: 0, held: false };
      use.count += 1;
      users.set(key, use);
      const { acquired } = await send(takeQueued(), { ...slot, options: { leaseMs, maxActive, spacingMs } });
      if (!acquired || 'err' in acquired) {
        done(key, slot);
        metrics.unchecked.inc();
        logger.warn({ err: acquired?.err, jobId }, 'fair-share check failed; the job runs without a slot');
        return { leave: () => undefined };
      }
      const { waitMs } = acquired;
      if (waitMs === 0) {
        use.held = true;
        return hold(key, slot);
      }
      done(key, slot);
      metrics.deferrals.inc();
      metrics.deferralWait.observe(waitMs / 1000);
      return { waitMs };
    },
  };
}

export type FairGate = ReturnType<typeof createFairGate>;
