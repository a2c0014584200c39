import { formatStatuses } from './load.js';
import { exitCodes, p99, pause, seconds, serverErrors, timedLoad, verifyOrders } from './measure.js';
import { Prober } from './probes.js';
import { runScenario } from './rig.js';
import type { Scenario } from './types.js';
import { readOrders } from './verify.js';

export interface MongoFreezeSizes {
  readonly ratePerSecond: number;
  /** Share of the requests that read an accepted order (GET /orders/:id). */
  readonly getShare: number;
  readonly beforeMs: number;
  readonly outageMs: number;
  readonly afterMs: number;
  readonly workers: number;
  /** Bound for the p99 of requests answered while MongoDB is frozen. */
  readonly p99BoundMs: number;
  readonly probeIntervalMs: number;
  /**
   * Readiness turns 503 within this of the freeze, and 200 within this of the resume: the driver's
   * heartbeat (2 s), one probe interval (1 s) and one probe's own timeout (HEALTH_TIMEOUT_MS, 1 s).
   */
  readonly readinessBoundMs: number;
  /** After the resume, the api must answer normally again within this (the driver's heartbeat, 2 s, and a reconnect). */
  readonly recoverBoundMs: number;
  readonly settleTimeoutMs: number;
}

/** #4: MongoDB frozen (SIGSTOP) under POST and GET load. */
export const mongoFrozen: Scenario<MongoFreezeSizes> = {
  id: 4,
  title: 'MongoDB frozen',
  fault: (s) =>
    `MongoDB frozen (SIGSTOP) ${s.outageMs / 1000} s under ${s.ratePerSecond} req/s (${Math.round(s.getShare * 100)}% GET)`,
  passLine:
    'POST/GET 503 with Retry-After within 2 s (p99), no other error, every process stays up, readiness 503 during / 200 after, 100% processed after resume',
  sizes: {
    full: {
      ratePerSecond: 20,
      getShare: 0.3,
      beforeMs: 5000,
      outageMs: 20_000,
      afterMs: 10_000,
      workers: 3,
      p99BoundMs: 2000,
      probeIntervalMs: 1000,
      readinessBoundMs: 4000,
      recoverBoundMs: 5000,
      settleTimeoutMs: 120_000,
    },
    quick: {
      ratePerSecond: 10,
      getShare: 0.3,
      beforeMs: 3000,
      outageMs: 8000,
      afterMs: 4000,
      workers: 2,
      p99BoundMs: 2000,
      probeIntervalMs: 1000,
      readinessBoundMs: 4000,
      recoverBoundMs: 5000,
      settleTimeoutMs: 90_000,
    },
  },
  run(ctx, s) {
    return runScenario(
      ctx,
      { id: this.id, title: this.title, fault: this.fault(s), passLine: this.passLine },
      { label: 's4', workers: s.workers },
      async (rig, out) => {
        const ready = new Prober(`${rig.fleet.healthUrl}/health/ready`, s.probeIntervalMs).start();
        const apiLive = new Prober(`${rig.fleet.apiUrl}/health/live`, s.probeIntervalMs).start();
        try {
          const { recorder, load } = timedLoad(ctx, rig.fleet.apiUrl, {
            ratePerSecond: s.ratePerSecond,
            durationMs: s.beforeMs + s.outageMs + s.afterMs,
            getShare: s.getShare,
          });
          await pause(s.beforeMs, ctx.signal);
          const faultAt = Date.now();
          rig.mongo.freeze();
          ctx.progress.log(`MongoDB frozen (SIGSTOP pid ${rig.mongo.pid}, ${rig.mongo.kind})`);
          await pause(s.outageMs, ctx.signal);
          const backAt = Date.now();
          rig.mongo.thaw();
          ctx.progress.log('MongoDB continued (SIGCONT)');
          await load;

          const settlement = await verifyOrders(ctx, rig, out, recorder.accepted, {
            timeoutMs: s.settleTimeoutMs,
            allProcessed: true,
          });
          await pause(Math.max(0, backAt + s.readinessBoundMs + s.probeIntervalMs - Date.now()), ctx.signal);
          await Promise.all([ready.stop(), apiLive.stop()]);

          out.attach('requests', recorder.samples);
          out.attach('readiness', ready.samples);
          out.attach('api-live', apiLive.samples);
          out.attach('timeline', { faultAt, backAt });
          const during = recorder.window(faultAt, backAt);
          const recovered = backAt + s.recoverBoundMs;
          // Until the api has reconnected, 503 is the right answer; anything else is not.
          const refused = recorder.window(faultAt, recovered).filter((x) => x.status < 200 || x.status >= 300);
          const not503 = refused.filter((x) => x.status !== 503 || x.retryAfter === null);
          const errorsOutside = serverErrors([
            // answered before the freeze (a request in flight when it begins may rightly get 503)
            ...recorder.samples.filter((x) => x.start + x.ms < faultAt),
            ...recorder.window(recovered, Number.MAX_SAFE_INTEGER),
          ]);
          const duringP99 = p99(during);
          const readinessDownMs = ready.firstAfter(faultAt, 503);
          const readinessBackMs = ready.firstAfter(backAt, 200);
          const frozenProbes = ready.window(faultAt + s.readinessBoundMs, backAt);
          const liveBad = apiLive.samples.filter((x) => x.status !== 200);
          const orders = await readOrders(rig.db);
          const storedDespite503 = [...orders.keys()].filter((id) => !recorder.accepted.has(id));
          const settledDespite503 = storedDespite503.filter((id) =>
            ['PROCESSED', 'FAILED'].includes(orders.get(id)?.status ?? ''),
          );

          out.summary.p99Ms = duringP99;
          const all5xx = serverErrors(recorder.samples);
          const other5xx = all5xx.filter((x) => x.status !== 503).length;
          out.summary.fiveXx = other5xx === 0 ? `${all5xx.length} (all 503)` : `${all5xx.length} (${other5xx} not 503)`;
          out.summary.recoverMs = settlement.settled ? Date.now() - backAt : undefined;
          out.figure('POST answers while frozen', formatStatuses(during.filter((x) => x.kind === 'POST')));
          out.figure('GET answers while frozen', formatStatuses(during.filter((x) => x.kind === 'GET')));
          out.figure(
            'p99 / max while frozen: POST, GET',
            ['POST', 'GET']
              .map((kind) => {
                const ms = during.filter((x) => x.kind === kind).map((x) => x.ms);
                return `${p99(during.filter((x) => x.kind === kind))} / ${Math.round(Math.max(0, ...ms))} ms`;
              })
              .join(', '),
          );
          out.figure(
            'orders stored although answered 503 / of them settled',
            `${storedDespite503.length} / ${settledDespite503.length}`,
          );
          out.figure(
            'health readiness: 503 after freeze / 200 after resume',
            `${readinessDownMs === undefined ? 'never' : seconds(readinessDownMs)} / ${readinessBackMs === undefined ? 'never' : seconds(readinessBackMs)}`,
          );
          out.figure(
            'worker attempts that failed and were retried',
            rig.fleet.count(/"msg":"attempt failed; retry scheduled"/),
          );
          out.check(
            'the freeze was felt (some 503)',
            refused.some((x) => x.status === 503),
            formatStatuses(during),
          );
          out.check(
            'every refusal while frozen (and until reconnected) is 503 with Retry-After',
            not503.length === 0,
            not503.length === 0 ? formatStatuses(refused) : `${formatStatuses(not503)} without 503+Retry-After`,
          );
          out.check(`p99 while frozen ≤ ${s.p99BoundMs} ms`, duringP99 <= s.p99BoundMs, `${duringP99} ms`);
          out.check(
            `0 5xx before the freeze and from ${seconds(s.recoverBoundMs)} after it (recovers by itself)`,
            errorsOutside.length === 0,
            formatStatuses(errorsOutside),
          );
          const unexpected = rig.fleet.unexpectedExits();
          out.check('every process stays up', unexpected.length === 0, exitCodes(unexpected) || 'none exited');
          out.check(
            'api liveness 200 throughout',
            liveBad.length === 0,
            `${liveBad.length} of ${apiLive.samples.length} not 200`,
          );
          out.check(
            `readiness 503 within ${seconds(s.readinessBoundMs)} of the freeze and while it lasts`,
            readinessDownMs !== undefined &&
              readinessDownMs <= s.readinessBoundMs &&
              frozenProbes.every((x) => x.status === 503),
            `${readinessDownMs === undefined ? 'never' : seconds(readinessDownMs)}; ${frozenProbes.filter((x) => x.status === 503).length}/${frozenProbes.length} probes 503`,
          );
          out.check(
            `readiness 200 within ${seconds(s.readinessBoundMs)} after`,
            readinessBackMs !== undefined && readinessBackMs <= s.readinessBoundMs,
            readinessBackMs === undefined ? 'never' : seconds(readinessBackMs),
          );
        } finally {
          await Promise.all([ready.stop(), apiLive.stop()]);
        }
      },
    );
  },
};
