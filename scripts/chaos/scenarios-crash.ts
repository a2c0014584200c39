import { Recorder, formatStatuses, orderBody, pool, send, steadyLoad } from './load.js';
import {
  RECOVERY_BOUND_MS,
  exitCodes,
  killWorkersDuringLoad,
  loadProgress,
  p99,
  pause,
  seconds,
  serverErrors,
  timedLoad,
  verifyOrders,
} from './measure.js';
import { runScenario } from './rig.js';
import type { Scenario } from './types.js';
import { jobCounts } from './verify.js';

const backlogOf = (counts: Record<string, number>) =>
  (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0);

export interface WorkerKillSizes {
  readonly orders: number;
  readonly ratePerSecond: number;
  readonly workers: number;
  readonly killEveryMs: number;
  readonly processingDelayMs: number;
  readonly concurrency: number;
  readonly recoveryBoundMs: number;
  readonly settleTimeoutMs: number;
}

/** #1: orders flow while a random worker is SIGKILLed every few seconds and a new one started. */
export const workerKills: Scenario<WorkerKillSizes> = {
  id: 1,
  title: 'worker SIGKILL loop',
  fault: (s) =>
    `${s.orders} orders while a random worker of ${s.workers} is SIGKILLed every ${s.killEveryMs / 1000} s (and restarted)`,
  passLine: '0 lost, 0 duplicate effects, no order PROCESSING for longer than the recovery bound after the load ends',
  sizes: {
    full: {
      orders: 2000,
      ratePerSecond: 100,
      workers: 3,
      killEveryMs: 2000,
      processingDelayMs: 200,
      concurrency: 10,
      recoveryBoundMs: RECOVERY_BOUND_MS,
      settleTimeoutMs: 180_000,
    },
    quick: {
      orders: 300,
      ratePerSecond: 30,
      workers: 3,
      killEveryMs: 2000,
      processingDelayMs: 200,
      concurrency: 10,
      recoveryBoundMs: RECOVERY_BOUND_MS,
      settleTimeoutMs: 120_000,
    },
  },
  run(ctx, s) {
    return runScenario(
      ctx,
      { id: this.id, title: this.title, fault: this.fault(s), passLine: this.passLine },
      {
        label: 's1',
        workers: s.workers,
        env: { PROCESSING_DELAY_MS: String(s.processingDelayMs), WORKER_CONCURRENCY: String(s.concurrency) },
      },
      async (rig, out) => {
        const recorder = new Recorder();
        const durationMs = Math.ceil((s.orders / s.ratePerSecond) * 1000) + 1000;
        const load = steadyLoad({
          apiUrl: rig.fleet.apiUrl,
          recorder,
          ratePerSecond: s.ratePerSecond,
          durationMs,
          maxRequests: s.orders,
          signal: ctx.signal,
          onSample: loadProgress(ctx, recorder, s.orders),
        });
        const kills = await killWorkersDuringLoad(rig, ctx, load, { killEveryMs: s.killEveryMs, durationMs });

        out.attach('requests', recorder.samples);
        const settlement = await verifyOrders(ctx, rig, out, recorder.accepted, { timeoutMs: s.settleTimeoutMs });
        const errors = serverErrors(recorder.samples);
        out.summary.p99Ms = p99(recorder.samples);
        out.summary.recoverMs = settlement.ms;
        out.summary.fiveXx = errors.length;
        out.summary.exitCodes = `SIGKILL×${kills}`;
        out.figure('POST answers', formatStatuses(recorder.samples));
        out.figure(
          'workers SIGKILLed / started',
          `${kills} / ${rig.fleet.processes.filter((p) => p.service === 'worker').length}`,
        );
        out.figure('oldest PROCESSING order after the load', seconds(settlement.maxProcessingAgeMs));
        out.figure('recovery bound', seconds(s.recoveryBoundMs));
        out.figure('jobs failed after stalling too often', rig.fleet.count(/job failed after stalling/));
        out.check(
          `no order PROCESSING longer than ${seconds(s.recoveryBoundMs)} after the load`,
          settlement.maxProcessingAgeMs <= s.recoveryBoundMs,
          seconds(settlement.maxProcessingAgeMs),
        );
        out.check('at least one worker killed mid-load', kills > 0, kills);
        // A 503 is the api failing fast when MongoDB cannot keep up (a saturated 2-core CI machine):
        // the order was not accepted, so it cannot be lost. Any other 5xx is a fault of the api.
        out.check(
          '0 5xx but 503 (the api is not the target)',
          errors.filter((e) => e.status !== 503).length === 0,
          formatStatuses(errors),
        );
        const unexpected = rig.fleet.unexpectedExits();
        out.check(
          'no process exits unless killed (api, health, workers)',
          unexpected.length === 0,
          exitCodes(unexpected) || 'none',
        );
      },
    );
  },
};

export interface ShutdownSizes {
  readonly jobs: number;
  readonly workers: number;
  readonly concurrency: number;
  readonly processingDelayMs: number;
  /** SHUTDOWN_TIMEOUT_MS of the first half of the workers: long enough for their jobs to finish. */
  readonly finishTimeoutMs: number;
  /** SHUTDOWN_TIMEOUT_MS of the other half: shorter than a job, so their jobs are handed back. */
  readonly handBackTimeoutMs: number;
  /** What an exit may take past the worker's SHUTDOWN_TIMEOUT_MS (hand-back, closing connections). */
  readonly exitMarginMs: number;
  readonly settleTimeoutMs: number;
}

/** #7: every worker gets SIGTERM while its jobs run. */
export const shutdownUnderLoad: Scenario<ShutdownSizes> = {
  id: 7,
  title: 'SIGTERM every worker mid-job',
  fault: (s) =>
    `SIGTERM to all ${s.workers} workers while ${s.jobs} jobs of ${s.processingDelayMs / 1000} s run (half the workers have SHUTDOWN_TIMEOUT_MS ${s.finishTimeoutMs}, half ${s.handBackTimeoutMs})`,
  passLine: 'exit 0 within the bound, 0 jobs left active, 0 lost',
  sizes: {
    full: {
      jobs: 200,
      workers: 4,
      concurrency: 50,
      processingDelayMs: 5000,
      finishTimeoutMs: 15_000,
      handBackTimeoutMs: 2000,
      exitMarginMs: 5000,
      settleTimeoutMs: 120_000,
    },
    quick: {
      jobs: 40,
      workers: 2,
      concurrency: 20,
      processingDelayMs: 4000,
      finishTimeoutMs: 12_000,
      handBackTimeoutMs: 1500,
      exitMarginMs: 5000,
      settleTimeoutMs: 90_000,
    },
  },
  run(ctx, s) {
    return runScenario(
      ctx,
      { id: this.id, title: this.title, fault: this.fault(s), passLine: this.passLine },
      { label: 's7', workers: 0 },
      async (rig, out) => {
        const env = { PROCESSING_DELAY_MS: String(s.processingDelayMs), WORKER_CONCURRENCY: String(s.concurrency) };
        const finishing = Math.ceil(s.workers / 2);
        const workers = await Promise.all(
          Array.from({ length: s.workers }, (_, i) => {
            const timeout = i < finishing ? s.finishTimeoutMs : s.handBackTimeoutMs;
            return rig.fleet.startWorker({ env: { ...env, SHUTDOWN_TIMEOUT_MS: String(timeout) } });
          }),
        );
        const boundOf = (i: number) => (i < finishing ? s.finishTimeoutMs : s.handBackTimeoutMs) + s.exitMarginMs;

        const recorder = new Recorder();
        ctx.progress.phase('posting orders', s.jobs);
        await pool(
          s.jobs,
          20,
          async (n) => {
            recorder.add(await send(`${rig.fleet.apiUrl}/orders`, { method: 'POST', body: orderBody(n) }));
            ctx.progress.update(recorder.samples.length, formatStatuses(recorder.samples));
          },
          ctx.signal,
        );
        out.figure('POST answers', formatStatuses(recorder.samples));

        ctx.progress.phase(`waiting for ${s.jobs} active jobs`, s.jobs);
        const redis = rig.redisClient();
        let active = 0;
        const activeDeadline = Date.now() + 30_000;
        for (let i = 0; i < 240 && active < s.jobs && Date.now() < activeDeadline; i += 1) {
          active = (await jobCounts(redis, rig.prefix)).active ?? 0;
          ctx.progress.update(active);
          if (active < s.jobs) await pause(250, ctx.signal);
        }
        out.figure('jobs active at SIGTERM', active);
        out.check(`${s.jobs} jobs running at SIGTERM`, active >= s.jobs, active);

        ctx.progress.phase('SIGTERM to every worker', s.workers);
        const sentAt = Date.now();
        const exits = await Promise.all(
          workers.map(async (w, i) => {
            const status = await rig.fleet.stop(w, 'SIGTERM', boundOf(i) + 30_000);
            return { name: w.name, status, ms: Date.now() - sentAt, bound: boundOf(i) };
          }),
        );
        const afterExit = await jobCounts(redis, rig.prefix);
        const handedBack = rig.fleet.count(/attempt abandoned at shutdown/);
        const slowest = Math.max(...exits.map((e) => e.ms));
        out.summary.exitCodes = `SIGTERM: ${exits.map((e) => String(e.status.code ?? e.status.signal)).join(',')}`;
        out.summary.recoverMs = slowest;
        out.figure(
          'exit code and time per worker',
          exits
            .map((e) => `${e.name}:${e.status.code ?? e.status.signal} in ${seconds(e.ms)} (bound ${seconds(e.bound)})`)
            .join(', '),
        );
        out.figure('jobs completed before exit / handed back', `${afterExit.completed ?? 0} / ${handedBack}`);
        out.figure(
          'jobs after every worker exited',
          `active ${afterExit.active ?? 0}, waiting ${afterExit.waiting ?? 0}`,
        );
        out.check(
          'every worker exits 0',
          exits.every((e) => e.status.code === 0),
          exits.map((e) => e.status.code ?? e.status.signal).join(','),
        );
        out.check(
          'every worker exits within its bound',
          exits.every((e) => e.ms <= e.bound),
          `slowest ${seconds(slowest)}`,
        );
        out.check('0 jobs left active', (afterExit.active ?? 0) === 0, afterExit.active ?? 0);
        if (handedBack === 0 && s.handBackTimeoutMs < s.processingDelayMs) {
          out.check('jobs past the bound are handed back', false, '0 hand-backs logged');
        }

        ctx.progress.log('all workers exited; starting fresh workers');
        await Promise.all(Array.from({ length: finishing }, () => rig.fleet.startWorker({ env })));
        await verifyOrders(ctx, rig, out, recorder.accepted, { timeoutMs: s.settleTimeoutMs, allProcessed: true });
        out.summary.p99Ms = p99(recorder.samples);
        out.summary.fiveXx = serverErrors(recorder.samples).length;
      },
    );
  },
};

export interface WorkersAwaySizes {
  readonly ratePerSecond: number;
  readonly beforeMs: number;
  readonly stoppedMs: number;
  readonly afterMs: number;
  readonly workers: number;
  readonly p99BoundMs: number;
  readonly drainTimeoutMs: number;
}

/** #8: no worker at all for a while under load, then workers again. */
export const workersAway: Scenario<WorkersAwaySizes> = {
  id: 8,
  title: 'all workers stopped',
  fault: (s) =>
    `all ${s.workers} workers stopped ${s.stoppedMs / 1000} s under ${s.ratePerSecond} POST/s, then started`,
  passLine: 'api unaffected (every POST 201, p99 within bound, 0 5xx); backlog drains to 0',
  sizes: {
    full: {
      ratePerSecond: 20,
      beforeMs: 5000,
      stoppedMs: 60_000,
      afterMs: 5000,
      workers: 3,
      p99BoundMs: 1000,
      drainTimeoutMs: 120_000,
    },
    quick: {
      ratePerSecond: 10,
      beforeMs: 3000,
      stoppedMs: 15_000,
      afterMs: 3000,
      workers: 2,
      p99BoundMs: 1000,
      drainTimeoutMs: 90_000,
    },
  },
  run(ctx, s) {
    return runScenario(
      ctx,
      { id: this.id, title: this.title, fault: this.fault(s), passLine: this.passLine },
      { label: 's8', workers: s.workers },
      async (rig, out) => {
        const { recorder, load } = timedLoad(ctx, rig.fleet.apiUrl, {
          ratePerSecond: s.ratePerSecond,
          durationMs: s.beforeMs + s.stoppedMs + s.afterMs,
        });
        await pause(s.beforeMs, ctx.signal);
        const stoppedAt = Date.now();
        const stopped = rig.fleet.live('worker');
        ctx.progress.log(`SIGTERM to all ${stopped.length} workers`);
        await Promise.all(stopped.map((w) => rig.fleet.stop(w, 'SIGTERM', 30_000)));
        const remaining = s.stoppedMs - (Date.now() - stoppedAt);
        if (remaining > 0) await pause(remaining, ctx.signal);
        const backlog = backlogOf(await jobCounts(rig.redisClient(), rig.prefix));
        ctx.progress.log(`starting ${s.workers} workers; backlog ${backlog} jobs`);
        await Promise.all(Array.from({ length: s.workers }, () => rig.fleet.startWorker()));
        const startedAt = Date.now();
        await load;

        out.attach('requests', recorder.samples);
        out.attach('timeline', { stoppedAt, startedAt });
        const during = recorder.window(stoppedAt, startedAt, 'POST');
        const errors = serverErrors(recorder.samples);
        const settlement = await verifyOrders(ctx, rig, out, recorder.accepted, {
          timeoutMs: s.drainTimeoutMs,
          allProcessed: true,
        });
        const after = backlogOf(await jobCounts(rig.redisClient(), rig.prefix));
        const drainMs = Date.now() - startedAt;
        out.summary.p99Ms = p99(during);
        out.summary.fiveXx = errors.length;
        out.summary.recoverMs = settlement.settled ? drainMs : undefined;
        out.summary.exitCodes = `SIGTERM: ${stopped.map((w) => String(w.exit?.code ?? w.exit?.signal)).join(',')}`;
        out.figure('POST answers while no worker ran', formatStatuses(during));
        out.figure(
          'POST p99 before / while stopped',
          `${p99(recorder.window(0, stoppedAt, 'POST'))} / ${p99(during)} ms`,
        );
        out.figure('backlog when workers came back', backlog);
        out.figure('time from restart until drained', seconds(drainMs));
        out.check(
          'every POST while stopped answered 201',
          during.length > 0 && during.every((x) => x.status === 201),
          formatStatuses(during),
        );
        out.check(`POST p99 while stopped ≤ ${s.p99BoundMs} ms`, p99(during) <= s.p99BoundMs, `${p99(during)} ms`);
        out.check(
          '0 5xx but 503 (fail-fast refusals are not accepted orders)',
          errors.filter((e) => e.status !== 503).length === 0,
          formatStatuses(errors),
        );
        out.check('backlog drains to 0', after === 0 && settlement.settled, `${after} jobs left`);
        out.check(
          'workers exit 0 on SIGTERM',
          stopped.every((w) => w.exit?.code === 0),
          exitCodes(stopped),
        );
      },
    );
  },
};
