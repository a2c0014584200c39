import { formatStatuses } from './load.js';
import { exitCodes, p99, pause, seconds, serverErrors, timedLoad, verifyOrders } from './measure.js';
import { Prober } from './probes.js';
import { BATTERY_ENV, runScenario, type Rig } from './rig.js';
import type { Scenario, ScenarioContext, ScenarioResult } from './types.js';
import { readOrders, reconcileScheduleExists } from './verify.js';

export interface RedisOutageSizes {
  readonly ratePerSecond: number;
  readonly beforeMs: number;
  readonly outageMs: number;
  readonly afterMs: number;
  readonly workers: number;
  readonly processingDelayMs: number;
  /** WORKER_CONCURRENCY: a low one builds a backlog, so that Redis holds jobs when it fails. */
  readonly concurrency: number;
  /** Bound for the p99 of POSTs answered while Redis is away. */
  readonly p99BoundMs: number;
  /** Readiness probe period of the health process. */
  readonly probeIntervalMs: number;
  /** Bound for readiness to turn 503 after the fault, and 200 after it ends. */
  readonly readinessBoundMs: number;
  /** Bound for the reconcile schedule to be back after Redis restarts empty. */
  readonly scheduleBoundMs: number;
  readonly settleTimeoutMs: number;
}

const FULL: RedisOutageSizes = {
  ratePerSecond: 20,
  beforeMs: 5000,
  outageMs: 20_000,
  afterMs: 10_000,
  workers: 3,
  processingDelayMs: 100,
  concurrency: 10,
  p99BoundMs: 1000,
  probeIntervalMs: 1000,
  // one probe period + HEALTH_TIMEOUT_MS (1 s) + 1 s for a busy machine
  readinessBoundMs: 3000,
  scheduleBoundMs: 2 * Number(BATTERY_ENV.RECONCILE_INTERVAL_MS) + 3000,
  settleTimeoutMs: 120_000,
};

const QUICK: RedisOutageSizes = {
  ...FULL,
  ratePerSecond: 10,
  beforeMs: 3000,
  outageMs: 8000,
  afterMs: 4000,
  workers: 2,
  settleTimeoutMs: 90_000,
};

type RedisFault = 'stop' | 'freeze' | 'restart-empty' | 'memory-full';

function runRedisOutage(
  ctx: ScenarioContext,
  meta: { id: number; title: string; fault: string; passLine: string },
  fault: RedisFault,
  s: RedisOutageSizes,
): Promise<ScenarioResult> {
  return runScenario(
    ctx,
    meta,
    {
      label: `s${meta.id}`,
      workers: s.workers,
      env: { PROCESSING_DELAY_MS: String(s.processingDelayMs), WORKER_CONCURRENCY: String(s.concurrency) },
    },
    async (rig, out) => {
      const ready = new Prober(`${rig.fleet.healthUrl}/health/ready`, s.probeIntervalMs).start();
      const live = new Prober(`${rig.fleet.healthUrl}/health/live`, s.probeIntervalMs).start();
      try {
        const { recorder, load } = timedLoad(ctx, rig.fleet.apiUrl, {
          ratePerSecond: s.ratePerSecond,
          durationMs: s.beforeMs + s.outageMs + s.afterMs,
        });
        await pause(s.beforeMs, ctx.signal);

        const inFlight = [...(await readOrders(rig.db)).values()].filter(
          (o) => o.status === 'PENDING' || o.status === 'PROCESSING',
        ).length;
        // A full Redis under `noeviction` refuses every write (OOM) and still answers reads and PING.
        const policy = fault === 'memory-full' ? await maxmemoryPolicy(rig.redisClient()) : undefined;
        const faultAt = Date.now();
        if (fault === 'freeze') rig.redis.freeze();
        else if (fault === 'memory-full') await rig.redisClient().config('SET', 'maxmemory', '1');
        else await rig.redis.stop({ keepData: fault === 'stop' });
        const downAt = Date.now();
        ctx.progress.log(
          fault === 'freeze'
            ? `Redis frozen (SIGSTOP pid ${rig.redis.pid})`
            : fault === 'memory-full'
              ? `Redis full: maxmemory 1 byte under maxmemory-policy ${policy}`
              : `Redis stopped (${fault === 'stop' ? 'data saved' : 'data dropped'})`,
        );
        await pause(Math.max(0, s.outageMs - (downAt - faultAt)), ctx.signal);
        const backAt = Date.now();
        if (fault === 'freeze') rig.redis.thaw();
        else if (fault === 'memory-full') await rig.redisClient().config('SET', 'maxmemory', '0');
        else await rig.redis.start();
        ctx.progress.log(
          fault === 'freeze'
            ? 'Redis continued (SIGCONT)'
            : fault === 'memory-full'
              ? 'Redis has room again (maxmemory 0)'
              : `Redis started again on port ${rig.redis.port}`,
        );

        let scheduleBackMs: number | undefined;
        if (fault === 'restart-empty') {
          const restartedAt = Date.now();
          for (let i = 0; i < 120 && scheduleBackMs === undefined; i += 1) {
            if (await reconcileScheduleExists(rig.redisClient(), rig.prefix).catch(() => false)) {
              scheduleBackMs = Date.now() - restartedAt;
            } else await pause(250, ctx.signal);
          }
        }
        await load;

        const settlement = await verifyOrders(ctx, rig, out, recorder.accepted, {
          timeoutMs: s.settleTimeoutMs,
          allProcessed: true,
        });
        await pause(Math.max(0, backAt + s.readinessBoundMs + s.probeIntervalMs - Date.now()), ctx.signal);
        await Promise.all([ready.stop(), live.stop()]);

        out.attach('requests', recorder.samples);
        out.attach('readiness', ready.samples);
        out.attach('live', live.samples);
        out.attach('timeline', { faultAt, downAt, backAt });
        const during = recorder.window(downAt, backAt, 'POST');
        const errors = serverErrors(recorder.samples);
        const outageP99 = p99(during);
        const readinessDownMs = ready.firstAfter(faultAt, 503);
        const readinessBackMs = ready.firstAfter(backAt, 200);
        out.summary.p99Ms = outageP99;
        out.summary.fiveXx = errors.length;
        out.summary.recoverMs = settlement.settled ? Date.now() - backAt : undefined;
        out.figure('POST answers while Redis was away', formatStatuses(during));
        out.figure(
          'POST p50 / p99 while away',
          `${Math.round(during.map((x) => x.ms).sort((a, b) => a - b)[Math.floor(during.length / 2)] ?? 0)} / ${outageP99} ms`,
        );
        out.figure('POST answers overall', formatStatuses(recorder.samples));
        out.figure(
          'health readiness: 503 after fault / 200 after recovery',
          `${readinessDownMs === undefined ? 'never' : seconds(readinessDownMs)} / ${readinessBackMs === undefined ? 'never' : seconds(readinessBackMs)}`,
        );
        const ticks = rig.fleet.entries('reconcile tick');
        const sum = (key: string) => ticks.reduce((n, t) => n + (Number(t[key]) || 0), 0);
        out.figure('orders in flight when the fault began', inFlight);
        out.figure(
          'reconciler: never enqueued / job missing / re-enqueued',
          `${sum('unqueued')} / ${sum('missingJob')} / ${sum('reenqueued')}`,
        );
        out.check(
          'POSTs while away answered 2xx (202: stored, enqueued later)',
          during.length > 0 && during.every((x) => x.status >= 200 && x.status < 300),
          formatStatuses(during),
        );
        out.check(
          'the outage was felt (some 202)',
          during.some((x) => x.status === 202),
          formatStatuses(during),
        );
        out.check(`POST p99 while away ≤ ${s.p99BoundMs} ms`, outageP99 <= s.p99BoundMs, `${outageP99} ms`);
        out.check('0 5xx, every request answered', errors.length === 0, formatStatuses(errors));
        const unexpected = rig.fleet.unexpectedExits();
        out.check('every process stays up', unexpected.length === 0, exitCodes(unexpected) || 'none exited');

        if (fault === 'freeze') {
          const bound = s.readinessBoundMs;
          const frozenProbes = ready.window(faultAt + bound, backAt);
          const liveBad = live.samples.filter((x) => x.status !== 200);
          out.check(
            `readiness 503 within ${seconds(bound)} of the freeze`,
            readinessDownMs !== undefined && readinessDownMs <= bound,
            readinessDownMs === undefined ? 'never' : seconds(readinessDownMs),
          );
          out.check(
            'readiness 503 for the rest of the freeze',
            frozenProbes.length > 0 && frozenProbes.every((x) => x.status === 503),
            `${frozenProbes.filter((x) => x.status === 503).length}/${frozenProbes.length} probes 503`,
          );
          out.check(
            `readiness 200 within ${seconds(bound)} after`,
            readinessBackMs !== undefined && readinessBackMs <= bound,
            readinessBackMs === undefined ? 'never' : seconds(readinessBackMs),
          );
          out.check(
            'liveness 200 throughout',
            liveBad.length === 0,
            `${liveBad.length} of ${live.samples.length} not 200`,
          );
        }
        if (fault === 'memory-full') {
          out.figure('maxmemory-policy', policy ?? 'unknown');
          out.check(
            'Redis refused writes under noeviction (the fault is the one meant)',
            policy === 'noeviction',
            policy ?? 'unknown',
          );
        }
        if (fault === 'restart-empty') {
          out.check(
            'the jobs Redis lost were found and re-enqueued',
            inFlight === 0 || sum('missingJob') > 0,
            `${sum('missingJob')} missing jobs re-enqueued (${inFlight} orders in flight at the restart)`,
          );
          out.figure(
            'reconcile schedule back after the restart',
            scheduleBackMs === undefined ? 'never' : seconds(scheduleBackMs),
          );
          out.check(
            `reconcile schedule back within ${seconds(s.scheduleBoundMs)}`,
            scheduleBackMs !== undefined && scheduleBackMs <= s.scheduleBoundMs,
            scheduleBackMs === undefined ? 'never' : seconds(scheduleBackMs),
          );
        }
      } finally {
        await Promise.all([ready.stop(), live.stop()]);
      }
    },
  );
}

/** `maxmemory-policy` of the Redis behind `redis`. */
async function maxmemoryPolicy(redis: ReturnType<Rig['redisClient']>): Promise<string> {
  const [, value] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
  return value;
}

/** #2: Redis stopped (its data saved, as a Redis with persistence keeps it) under steady POST load. */
export const redisStopped: Scenario<RedisOutageSizes> = {
  id: 2,
  title: 'Redis stopped',
  fault: (s) => `Redis stopped ${s.outageMs / 1000} s (SHUTDOWN SAVE, then started) under ${s.ratePerSecond} POST/s`,
  passLine: 'POSTs get 202 within 1 s (p99), 0 other 5xx; after Redis returns every order is processed; 0 lost',
  sizes: { full: FULL, quick: QUICK },
  run(ctx, s) {
    return runRedisOutage(ctx, { id: 2, title: this.title, fault: this.fault(s), passLine: this.passLine }, 'stop', s);
  },
};

/** #3: Redis frozen (SIGSTOP): connections stay open, nothing answers. */
export const redisFrozen: Scenario<RedisOutageSizes> = {
  id: 3,
  title: 'Redis frozen',
  fault: (s) => `Redis frozen (SIGSTOP) ${s.outageMs / 1000} s under ${s.ratePerSecond} POST/s`,
  passLine: 'same figures as #2; readiness 503 during, 200 after; liveness 200',
  sizes: { full: FULL, quick: QUICK },
  run(ctx, s) {
    return runRedisOutage(
      ctx,
      { id: 3, title: this.title, fault: this.fault(s), passLine: this.passLine },
      'freeze',
      s,
    );
  },
};

/** #9: Redis restarted empty: every job, and the reconciler's own schedule, is gone. */
export const redisRestartedEmpty: Scenario<RedisOutageSizes> = {
  id: 9,
  title: 'Redis restarted empty',
  fault: (s) =>
    `Redis stopped without saving, a new empty one on the same port after ${s.outageMs / 1000} s, under ${s.ratePerSecond} POST/s`,
  passLine:
    'reconcile schedule back within 2 intervals; orders whose jobs were lost re-enqueued and processed; 0 lost, 0 duplicate effects, 0 5xx',
  sizes: {
    full: { ...FULL, outageMs: 5000, processingDelayMs: 500, concurrency: 2 },
    quick: { ...QUICK, outageMs: 3000, processingDelayMs: 500, concurrency: 2 },
  },
  run(ctx, s) {
    return runRedisOutage(
      ctx,
      { id: 9, title: this.title, fault: this.fault(s), passLine: this.passLine },
      'restart-empty',
      s,
    );
  },
};

/** #13: Redis full: `maxmemory` reached under `noeviction` (what a full Redis host looks like to BullMQ). */
export const redisMemoryFull: Scenario<RedisOutageSizes> = {
  id: 13,
  title: 'Redis memory full (noeviction)',
  fault: (s) =>
    `Redis maxmemory set below its use (noeviction: every write refused with OOM) for ${s.outageMs / 1000} s, under ${s.ratePerSecond} POST/s`,
  passLine:
    'POSTs get 202 within 1 s (p99), 0 5xx; once Redis has room every order is processed; 0 lost, 0 duplicate effects',
  sizes: { full: FULL, quick: QUICK },
  run(ctx, s) {
    return runRedisOutage(
      ctx,
      { id: 13, title: this.title, fault: this.fault(s), passLine: this.passLine },
      'memory-full',
      s,
    );
  },
};
