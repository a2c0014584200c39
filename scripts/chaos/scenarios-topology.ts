import { Queue } from 'bullmq';
import { ORDERS_QUEUE } from '#common';
import { startClusterTopology, startSentinelTopology, type RedisTopologyProcesses } from '../lib/redis-topology.js';
import { startTcpProxy } from '../lib/tcp-proxy.js';
import type { FleetProcess } from './fleet.js';
import { formatStatuses, type Sample } from './load.js';
import { RECOVERY_BOUND_MS, exitCodes, p99, pause, seconds, serverErrors, timedLoad, verifyOrders } from './measure.js';
import { runScenario, type Outcome, type Rig } from './rig.js';
import type { Scenario, ScenarioContext, ScenarioResult } from './types.js';

// Issue 16: the fleet on real Redis topologies (Sentinel, Cluster) and a worker cut off from Redis.
// Ports: the topologies take a block from 44500 on (scripts/lib/redis-topology.ts finds a free one).
const SENTINEL_BASE_PORT = 44500;
const CLUSTER_BASE_PORT = 44600;

export interface FailoverSizes {
  readonly ratePerSecond: number;
  /** Load before the master is killed. */
  readonly beforeMs: number;
  /** Load after the kill (the failover happens inside it). */
  readonly afterMs: number;
  readonly workers: number;
  readonly processingDelayMs: number;
  /** A low WORKER_CONCURRENCY keeps a backlog in Redis when its master dies. */
  readonly concurrency: number;
  /** What the failover may add to the POST p99 (between the kill and the promotion) over the p99 before it. */
  readonly p99BoundMs: number;
  readonly settleTimeoutMs: number;
}

const FAILOVER_FULL: FailoverSizes = {
  ratePerSecond: 20,
  beforeMs: 5000,
  afterMs: 15_000,
  workers: 3,
  processingDelayMs: 100,
  concurrency: 5,
  p99BoundMs: 1000,
  settleTimeoutMs: 120_000,
};

const FAILOVER_QUICK: FailoverSizes = {
  ...FAILOVER_FULL,
  ratePerSecond: 10,
  beforeMs: 4000,
  afterMs: 10_000,
  workers: 2,
  p99BoundMs: 2000,
  settleTimeoutMs: 90_000,
};

/** The reconciler's findings summed over every worker's `reconcile tick` lines. */
function reconcilerFigures(rig: Rig) {
  const ticks = rig.fleet.entries('reconcile tick');
  const sum = (key: string) => ticks.reduce((n, t) => n + (Number(t[key]) || 0), 0);
  return { unqueued: sum('unqueued'), missingJob: sum('missingJob'), reenqueued: sum('reenqueued') };
}

/**
 * The POST figures every scenario here shares: statuses, 5xx, p99 before and during the fault window.
 * With `bound`, the fault is on the api's path (Redis itself): 0 5xx and the p99 bound are checks.
 */
function postFigures(
  out: Outcome,
  samples: readonly Sample[],
  window: { readonly from: number; readonly to: number },
  bound: number | undefined,
) {
  const errors = serverErrors(samples);
  const posts = samples.filter((x) => x.kind === 'POST');
  const during = posts.filter((x) => x.start >= window.from && x.start < window.to);
  const duringP99 = p99(during);
  out.summary.p99Ms = duringP99;
  out.summary.fiveXx = errors.length;
  out.figure('POST answers during the fault', formatStatuses(during));
  out.figure('POST answers overall', formatStatuses(samples));
  out.figure(
    'POST p99 before / during the fault / overall',
    `${p99(posts.filter((x) => x.start < window.from))} / ${duringP99} / ${p99(posts)} ms`,
  );
  if (bound === undefined) return;
  out.check('0 5xx, every request answered', errors.length === 0, formatStatuses(errors));
  // What the failover adds is judged, not the machine: on a loaded host the steady p99 alone can pass
  // the bound (a Cluster's six redis-servers share the cores), so the bound is over the p99 before it.
  const beforeP99 = p99(posts.filter((x) => x.start < window.from));
  out.check(
    `POST p99 during the fault ≤ p99 before it + ${bound} ms`,
    duringP99 <= beforeP99 + bound,
    `${duringP99} ms (before: ${beforeP99} ms)`,
  );
}

function runFailover(
  ctx: ScenarioContext,
  meta: { id: number; title: string; fault: string; passLine: string },
  start: () => Promise<RedisTopologyProcesses>,
  s: FailoverSizes,
): Promise<ScenarioResult> {
  return runScenario(
    ctx,
    meta,
    {
      label: `s${meta.id}`,
      workers: s.workers,
      topology: start,
      env: { PROCESSING_DELAY_MS: String(s.processingDelayMs), WORKER_CONCURRENCY: String(s.concurrency) },
    },
    async (rig, out) => {
      const topology = rig.topology as RedisTopologyProcesses;
      // Every key of the fleet carries the prefix (and its hash tag): this key's master is the queue's.
      const queueKey = `${rig.prefix}:${ORDERS_QUEUE}:id`;
      const { recorder, load } = timedLoad(ctx, rig.fleet.apiUrl, {
        ratePerSecond: s.ratePerSecond,
        durationMs: s.beforeMs + s.afterMs,
      });
      await pause(s.beforeMs, ctx.signal);
      const master = await topology.masterFor(queueKey);
      const killedAt = Date.now();
      await master.kill();
      ctx.progress.log(`SIGKILL the master on port ${master.port} (pid ${master.pid})`);
      const promoted = await topology.waitForNewMaster(queueKey, master, 60_000);
      const promotedAt = Date.now();
      ctx.progress.log(`port ${promoted.port} promoted after ${seconds(promotedAt - killedAt)}`);
      await load;

      // Back to normal: the first POST after the promotion whose job went straight to Redis (201).
      const firstCreated = recorder.window(promotedAt, Number.MAX_SAFE_INTEGER, 'POST').find((x) => x.status === 201);
      const settlement = await verifyOrders(ctx, rig, out, recorder.accepted, {
        timeoutMs: s.settleTimeoutMs,
        allProcessed: true,
      });
      const found = reconcilerFigures(rig);
      out.figure('failover: kill → replica promoted', seconds(promotedAt - killedAt));
      out.figure(
        'kill → first 201 (jobs straight to the new master)',
        firstCreated ? seconds(firstCreated.start + firstCreated.ms - killedAt) : 'none in the load',
      );
      out.figure(
        're-added by the reconciler: never enqueued (202) / job lost with the master',
        `${found.unqueued} / ${found.missingJob}`,
      );
      out.summary.recoverMs = settlement.settled ? Date.now() - killedAt : undefined;
      postFigures(out, recorder.samples, { from: killedAt, to: promotedAt + 1 }, s.p99BoundMs);
      out.check(
        'every POST answered 201 or 202',
        recorder.samples.every((x) => x.status === 201 || x.status === 202),
        formatStatuses(recorder.samples),
      );
      out.check('a replica was promoted', promoted.port !== master.port, `port ${master.port} → ${promoted.port}`);
      const unexpected = rig.fleet.unexpectedExits();
      out.check('every process stays up', unexpected.length === 0, exitCodes(unexpected) || 'none exited');
    },
  );
}

/** #16: Sentinel (1 master, 1 replica, 3 sentinels): the master SIGKILLed under POST load. */
export const sentinelFailover: Scenario<FailoverSizes> = {
  id: 16,
  title: 'Sentinel master killed',
  fault: (s) =>
    `Sentinel topology (1 master, 1 replica, 3 sentinels, down-after 1 s); master SIGKILLed under ${s.ratePerSecond} POST/s`,
  passLine:
    'replica promoted; POSTs 201/202 only, p99 during the failover within the outage bound of the p99 before; every accepted order PROCESSED; 0 lost, 0 doubled',
  sizes: { full: FAILOVER_FULL, quick: FAILOVER_QUICK },
  run(ctx, s) {
    return runFailover(
      ctx,
      { id: 16, title: this.title, fault: this.fault(s), passLine: this.passLine },
      () => startSentinelTopology({ basePort: SENTINEL_BASE_PORT }),
      s,
    );
  },
};

/** #17: Cluster (3 masters, 3 replicas): the master owning the queue's slot SIGKILLed under POST load. */
export const clusterFailover: Scenario<FailoverSizes> = {
  id: 17,
  title: 'Cluster slot owner killed',
  fault: (s) =>
    `Redis Cluster (3 masters + 3 replicas, node timeout 1.5 s); the master of the queue's slot SIGKILLed under ${s.ratePerSecond} POST/s`,
  passLine: 'same as #16: its replica takes the slot; 0 5xx, every accepted order PROCESSED; 0 lost, 0 doubled',
  sizes: { full: FAILOVER_FULL, quick: FAILOVER_QUICK },
  run(ctx, s) {
    return runFailover(
      ctx,
      { id: 17, title: this.title, fault: this.fault(s), passLine: this.passLine },
      () => startClusterTopology({ basePort: CLUSTER_BASE_PORT }),
      s,
    );
  },
};

export interface CutSizes {
  readonly ratePerSecond: number;
  readonly beforeMs: number;
  /** How long the worker stays cut off (longer than the stall bound, so its jobs must move). */
  readonly cutMs: number;
  readonly afterMs: number;
  /** Workers besides the one behind the proxy. */
  readonly workers: number;
  readonly processingDelayMs: number;
  readonly concurrency: number;
  /** Bound for every job active at the cut to be completed by another worker. */
  readonly recoveryBoundMs: number;
  readonly settleTimeoutMs: number;
}

const CUT_FULL: CutSizes = {
  ratePerSecond: 15,
  beforeMs: 5000,
  cutMs: RECOVERY_BOUND_MS + 5000,
  afterMs: 5000,
  workers: 2,
  processingDelayMs: 300,
  concurrency: 5,
  recoveryBoundMs: RECOVERY_BOUND_MS,
  settleTimeoutMs: 120_000,
};

const CUT_QUICK: CutSizes = { ...CUT_FULL, ratePerSecond: 10, beforeMs: 4000, afterMs: 3000 };

/**
 * #18: one worker reaches Redis through a TCP proxy that is then cut (connections stay open, no byte
 * passes: a partition, no root needed). Its active jobs must be handed back by the stalled check and
 * finished by the other workers; when the cut heals, its late writes must double nothing.
 */
export const workerCutFromRedis: Scenario<CutSizes> = {
  id: 18,
  title: 'worker cut from Redis',
  fault: (s) =>
    `one of ${s.workers + 1} workers behind a TCP proxy cut for ${seconds(s.cutMs)} (connections open, nothing passes), under ${s.ratePerSecond} POST/s`,
  passLine: `the cut worker's jobs finished by the others within the stall bound; 0 lost, 0 doubled; every process stays up`,
  sizes: { full: CUT_FULL, quick: CUT_QUICK },
  run(ctx, s) {
    return runScenario(
      ctx,
      { id: 18, title: this.title, fault: this.fault(s), passLine: this.passLine },
      {
        label: 's18',
        workers: s.workers,
        env: { PROCESSING_DELAY_MS: String(s.processingDelayMs), WORKER_CONCURRENCY: String(s.concurrency) },
      },
      async (rig, out) => {
        const proxy = await startTcpProxy(rig.redis.port);
        let cutWorker: FleetProcess | undefined;
        try {
          cutWorker = await rig.fleet.startWorker({ env: { REDIS_URL: proxy.url } });
          const queue = new Queue(ORDERS_QUEUE, { connection: rig.redisClient(), prefix: rig.prefix });
          try {
            const { recorder, load } = timedLoad(ctx, rig.fleet.apiUrl, {
              ratePerSecond: s.ratePerSecond,
              durationMs: s.beforeMs + s.cutMs + s.afterMs,
            });
            await pause(s.beforeMs, ctx.signal);
            const activeAtCut = (await queue.getJobs(['active'])).map((j) => j.id as string);
            const cutAt = Date.now();
            proxy.cut();
            ctx.progress.log(`${cutWorker.name} cut from Redis (${activeAtCut.length} jobs active fleet-wide)`);
            // When did each job active at the cut finish (completed by whoever)?
            const finishedAt = new Map<string, number>();
            while (Date.now() - cutAt < s.cutMs) {
              for (const id of activeAtCut.filter((x) => !finishedAt.has(x))) {
                const state = await queue.getJobState(id).catch(() => 'unknown');
                if (state === 'completed' || state === 'unknown') finishedAt.set(id, Date.now());
              }
              await pause(250, ctx.signal);
            }
            proxy.heal();
            const healedAt = Date.now();
            ctx.progress.log(`${cutWorker.name} reconnected`);
            await load;
            const settlement = await verifyOrders(ctx, rig, out, recorder.accepted, {
              timeoutMs: s.settleTimeoutMs,
              allProcessed: true,
            });
            const late = activeAtCut.filter((id) => (finishedAt.get(id) ?? Infinity) - cutAt > 2000);
            const unfinished = activeAtCut.filter((id) => !finishedAt.has(id));
            const recoverMs = Math.max(0, ...activeAtCut.map((id) => (finishedAt.get(id) ?? Infinity) - cutAt));
            out.summary.recoverMs = Number.isFinite(recoverMs) ? recoverMs : undefined;
            out.figure(
              'jobs active at the cut / finished > 2 s later (the cut worker held them)',
              `${activeAtCut.length} / ${late.length}`,
            );
            out.figure(
              'cut → last of them finished by another worker',
              Number.isFinite(recoverMs) ? seconds(recoverMs) : `${unfinished.length} not within the cut`,
            );
            const found = reconcilerFigures(rig);
            out.figure(
              're-added by the reconciler: never enqueued / job missing',
              `${found.unqueued} / ${found.missingJob}`,
            );
            // The cut is between one worker and Redis, not on the api's path: POST figures are context only.
            postFigures(out, recorder.samples, { from: cutAt, to: healedAt }, undefined);
            out.check(
              `every job active at the cut finished within ${seconds(s.recoveryBoundMs)} (stall bound)`,
              unfinished.length === 0 && recoverMs <= s.recoveryBoundMs,
              Number.isFinite(recoverMs) ? seconds(recoverMs) : `${unfinished.length} unfinished`,
            );
            out.check(
              'the cut worker held jobs when cut (the fault was felt)',
              late.length > 0,
              `${late.length} of ${activeAtCut.length}`,
            );
            out.check('every order settled', settlement.settled, settlement.settled ? 'yes' : 'no');
            const unexpected = rig.fleet.unexpectedExits();
            out.check('every process stays up', unexpected.length === 0, exitCodes(unexpected) || 'none exited');
          } finally {
            await queue.close().catch(() => undefined);
          }
        } finally {
          // The cut worker stops while its proxy still stands (closing it first would cut it again).
          proxy.heal();
          if (cutWorker && !cutWorker.exit) await rig.fleet.stop(cutWorker, 'SIGTERM', 15_000);
          await proxy.close();
        }
      },
    );
  },
};
