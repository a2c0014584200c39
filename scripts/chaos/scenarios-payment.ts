import { Recorder, formatStatuses, steadyLoad } from './load.js';
import {
  exitCodes,
  killWorkersDuringLoad,
  loadProgress,
  pause,
  seconds,
  serverErrors,
  timedLoad,
  p99,
} from './measure.js';
import {
  SandboxProcess,
  auditCharges,
  metricSum,
  scrape,
  setStock,
  someIds,
  startMeteredWorker,
  stockLevel,
  type ChargeAudit,
} from './payment-rig.js';
import { runScenario, type Outcome, type Rig } from './rig.js';
import type { Scenario, ScenarioContext } from './types.js';
import { effectReport, readOrders, waitSettled, type Settlement } from './verify.js';

// The order workflow (issue 13) under faults: real workers run the saga (reserve in MongoDB, charge
// through the payment sandbox process over HTTP, confirm), and the battery audits the sandbox's
// charges and the stock levels against the orders' final states.

/** One unit of `sku`, so that `sold` counts PROCESSED orders. */
const oneUnitOf = (sku: string) => (n: number) => ({
  customerId: `chaos-saga-${n}`,
  items: [{ sku, quantity: 1, unitPriceCents: 1000 }],
  currency: 'EUR',
});

/**
 * Waits until the orders are final, then audits charges and effects: the checks every payment
 * scenario shares (0 lost, 0 double charges, PROCESSED orders paid once, nothing charged unserved).
 */
async function settleAndAudit(
  ctx: ScenarioContext,
  rig: Rig,
  out: Outcome,
  sandbox: SandboxProcess,
  ids: ReadonlySet<string>,
  options: { readonly timeoutMs: number; readonly final: ReadonlySet<string> },
): Promise<{ settlement: Settlement; audit: ChargeAudit; statuses: Record<string, number> }> {
  const wanted = [...ids];
  ctx.progress.phase('waiting until every accepted order is final', wanted.length);
  const settlement = await waitSettled(rig.db, wanted, {
    timeoutMs: options.timeoutMs,
    signal: ctx.signal,
    onPoll: (settled, total) => ctx.progress.update(settled, `of ${total} final`),
  });
  if (ctx.signal.aborted) throw new Error('interrupted');
  const [orders, charges, effects] = await Promise.all([
    readOrders(rig.db),
    sandbox.charges(),
    effectReport(rig.db, wanted),
  ]);
  const audit = auditCharges(charges, orders, wanted);
  // Lost: not in one of the states the scenario's pass line allows (a FAILED order is lost to the customer).
  const lost = wanted.filter((id) => !options.final.has(orders.get(id)?.status ?? 'MISSING'));
  const doubled = audit.doubleCharged.length + effects.duplicates;
  out.summary.accepted = wanted.length;
  out.summary.lost = lost.length;
  out.summary.duplicateEffects = doubled;
  out.summary.recoverMs = settlement.settled ? settlement.ms : undefined;
  out.figure('orders accepted (2xx)', wanted.length);
  out.figure(
    'final states',
    Object.entries(settlement.statuses)
      .map(([s, n]) => `${s} ${n}`)
      .join(', '),
  );
  out.figure('charges / refunds at the sandbox', `${audit.charges} / ${audit.refunds}`);
  out.figure('double charges (standing charges > 1)', audit.doubleCharged.length);
  out.figure('effect records / duplicate effects', `${effects.effects} / ${effects.duplicates}`);
  out.figure(`lost (not ${[...options.final].join(' or ')})`, lost.length);
  // Claims per order: more than one means an attempt was cut (a kill, a timeout, the breaker) and taken over.
  const claims = wanted.map((id) => orders.get(id)?.attempts ?? 0);
  out.figure(
    'orders claimed more than once / most claims of one order',
    `${claims.filter((n) => n > 1).length} / ${Math.max(0, ...claims)}`,
  );
  out.check(`0 lost (every order ${[...options.final].join(' or ')})`, lost.length === 0, someIds(lost));
  out.check('0 double charges', audit.doubleCharged.length === 0, someIds(audit.doubleCharged));
  out.check(
    'every PROCESSED order has exactly one standing charge',
    audit.processedNotOnce.length === 0,
    someIds(audit.processedNotOnce),
  );
  out.check(
    'no order charged but not PROCESSED (refunded or never charged)',
    audit.chargedNotServed.length === 0,
    someIds(audit.chargedNotServed),
  );
  out.check('0 duplicate effects', effects.duplicates === 0, effects.duplicates);
  for (const id of [...lost, ...audit.doubleCharged, ...audit.processedNotOnce, ...audit.chargedNotServed].slice(
    0,
    5,
  )) {
    const row = orders.get(id);
    out.evidence.push(
      `${id}: ${row ? `${row.status}, attempts ${row.attempts}, updatedAt ${row.updatedAt.toISOString()}` : 'not in MongoDB'}; standing charges ${audit.standing.get(id) ?? 0}; charges ${charges
        .filter((c) => c.orderId === id)
        .map((c) => `${c.id}:${c.status}${c.refunds.length ? `+${c.refunds.length} refund` : ''}`)
        .join(' ')}`,
    );
    out.evidence.push(...rig.fleet.grep(new RegExp(id), 8));
  }
  return { settlement, audit, statuses: settlement.statuses };
}

// --- #10 ---------------------------------------------------------------------------------------

export interface SagaKillSizes {
  readonly orders: number;
  readonly ratePerSecond: number;
  readonly workers: number;
  readonly killEveryMs: number;
  /** Share of the orders the stock can serve. */
  readonly stockShare: number;
  /** Sandbox latency per provider call, so that charges are in flight when a worker dies. */
  readonly latencyMs: readonly [number, number];
  readonly concurrency: number;
  readonly settleTimeoutMs: number;
}

const SAGA_SKU = 'SKU-SAGA';

/** #10: a random worker SIGKILLed every 2 s while the saga reserves, charges and confirms. */
export const sagaKills: Scenario<SagaKillSizes> = {
  id: 10,
  title: 'worker SIGKILL mid-saga',
  fault: (s) =>
    `${s.orders} one-unit orders of ${SAGA_SKU} (stock for ${Math.round(s.stockShare * 100)}%), sandbox latency ${s.latencyMs.join('–')} ms, a random worker of ${s.workers} SIGKILLed every ${s.killEveryMs / 1000} s (and restarted)`,
  passLine:
    '0 lost (PROCESSED or REJECTED), 0 double charges (PROCESSED: exactly one standing charge), 0 oversold (sold ≤ stock, available+reserved+sold = stock, reserved 0), sold = PROCESSED',
  sizes: {
    full: {
      orders: 1000,
      ratePerSecond: 50,
      workers: 3,
      killEveryMs: 2000,
      stockShare: 0.6,
      latencyMs: [100, 400],
      concurrency: 10,
      settleTimeoutMs: 180_000,
    },
    quick: {
      orders: 150,
      ratePerSecond: 15,
      workers: 3,
      killEveryMs: 2000,
      stockShare: 0.6,
      latencyMs: [100, 400],
      concurrency: 10,
      settleTimeoutMs: 90_000,
    },
  },
  async run(ctx, s) {
    const provider = await SandboxProcess.reserve();
    return runScenario(
      ctx,
      { id: this.id, title: this.title, fault: this.fault(s), passLine: this.passLine },
      {
        label: 's10',
        workers: s.workers,
        env: { ...provider.env, PROCESSING_DELAY_MS: '0', WORKER_CONCURRENCY: String(s.concurrency) },
      },
      async (rig, out) => {
        const sandbox = await SandboxProcess.start(rig, provider.port, { latencyMs: s.latencyMs });
        const stock = Math.floor(s.orders * s.stockShare);
        await setStock(rig.fleet.apiUrl, SAGA_SKU, stock);

        const recorder = new Recorder();
        const durationMs = Math.ceil((s.orders / s.ratePerSecond) * 1000) + 1000;
        const load = steadyLoad({
          apiUrl: rig.fleet.apiUrl,
          recorder,
          ratePerSecond: s.ratePerSecond,
          durationMs,
          maxRequests: s.orders,
          body: oneUnitOf(SAGA_SKU),
          signal: ctx.signal,
          onSample: loadProgress(ctx, recorder, s.orders),
        });
        const kills = await killWorkersDuringLoad(rig, ctx, load, { killEveryMs: s.killEveryMs, durationMs });
        out.attach('requests', recorder.samples);

        const { statuses } = await settleAndAudit(ctx, rig, out, sandbox, recorder.accepted, {
          timeoutMs: s.settleTimeoutMs,
          final: new Set(['PROCESSED', 'REJECTED']),
        });
        const level = await stockLevel(rig.fleet.apiUrl, SAGA_SKU);
        const processed = statuses.PROCESSED ?? 0;
        const oversold = Math.max(0, level.sold - stock);
        out.summary.fiveXx = serverErrors(recorder.samples).length;
        out.summary.p99Ms = p99(recorder.samples);
        out.summary.exitCodes = `SIGKILL×${kills}`;
        out.figure('POST answers', formatStatuses(recorder.samples));
        out.figure('processed / rejected', `${processed} / ${statuses.REJECTED ?? 0}`);
        out.figure(
          'stock set / available / reserved / sold',
          `${stock} / ${level.available} / ${level.reserved} / ${level.sold}`,
        );
        out.figure('oversold', oversold);
        out.figure(
          'workers SIGKILLed / started',
          `${kills} / ${rig.fleet.processes.filter((p) => p.service === 'worker').length}`,
        );
        out.check('0 oversold (sold ≤ stock set)', level.sold <= stock, `sold ${level.sold} of ${stock}`);
        out.check(
          'available + reserved + sold = stock set',
          level.available + level.reserved + level.sold === stock,
          `${level.available} + ${level.reserved} + ${level.sold} vs ${stock}`,
        );
        out.check('reserved 0 at the end', level.reserved === 0, level.reserved);
        out.check('sold = PROCESSED orders', level.sold === processed, `sold ${level.sold}, PROCESSED ${processed}`);
        out.check('at least one worker killed mid-load', kills > 0, kills);
        // A 503 is the api failing fast when MongoDB cannot keep up: the order was not accepted.
        out.check(
          '0 5xx but 503 (the api is not the target)',
          serverErrors(recorder.samples).filter((e) => e.status !== 503).length === 0,
          formatStatuses(serverErrors(recorder.samples)),
        );
        out.check('the stock ran out (some orders REJECTED)', (statuses.REJECTED ?? 0) > 0, statuses.REJECTED ?? 0);
        const unexpected = rig.fleet.unexpectedExits();
        out.check('no process exits unless killed', unexpected.length === 0, exitCodes(unexpected) || 'none');
      },
    );
  },
};

// --- #11 ---------------------------------------------------------------------------------------

export interface OutageSizes {
  readonly ratePerSecond: number;
  readonly beforeMs: number;
  readonly outageMs: number;
  readonly afterMs: number;
  readonly workers: number;
  readonly jobAttempts: number;
  readonly jobBackoffMs: number;
  readonly breakerVolume: number;
  readonly breakerResetMs: number;
  readonly drainTimeoutMs: number;
}

/** The longest a job's retries can take: the back-off delays between its attempts (exponential, jitter only shortens them). */
const retryBudgetMs = (s: OutageSizes) =>
  Array.from({ length: s.jobAttempts - 1 }, (_, i) => s.jobBackoffMs * 2 ** i).reduce((a, b) => a + b, 0);

/** #11: the provider answers 503 for longer than the whole retry budget while orders arrive. */
export const providerOutage: Scenario<OutageSizes> = {
  id: 11,
  title: 'payment provider outage',
  fault: (s) =>
    `sandbox answers 503 for ${seconds(s.outageMs)} (retry budget ${seconds(retryBudgetMs(s))}: ${s.jobAttempts} attempts, back-off ${s.jobBackoffMs} ms) under ${s.ratePerSecond} POST/s; breaker volume ${s.breakerVolume}, reset ${s.breakerResetMs} ms`,
  passLine: 'the breaker opens, closes after the outage; 0 FAILED, every order PROCESSED after, 0 double charges',
  sizes: {
    full: {
      ratePerSecond: 20,
      beforeMs: 5000,
      outageMs: 40_000,
      afterMs: 5000,
      workers: 3,
      jobAttempts: 5,
      jobBackoffMs: 1000,
      breakerVolume: 3,
      breakerResetMs: 2000,
      drainTimeoutMs: 120_000,
    },
    quick: {
      ratePerSecond: 5,
      beforeMs: 2000,
      outageMs: 12_000,
      afterMs: 2000,
      workers: 2,
      jobAttempts: 5,
      jobBackoffMs: 500,
      breakerVolume: 2,
      breakerResetMs: 1500,
      drainTimeoutMs: 60_000,
    },
  },
  async run(ctx, s) {
    const provider = await SandboxProcess.reserve();
    return runScenario(
      ctx,
      { id: this.id, title: this.title, fault: this.fault(s), passLine: this.passLine },
      {
        label: 's11',
        workers: 0,
        env: {
          ...provider.env,
          JOB_ATTEMPTS: String(s.jobAttempts),
          JOB_BACKOFF_MS: String(s.jobBackoffMs),
          PAYMENT_TIMEOUT_MS: '1000',
          PAYMENT_BREAKER_VOLUME: String(s.breakerVolume),
          PAYMENT_BREAKER_RESET_MS: String(s.breakerResetMs),
          PAYMENT_BREAKER_WINDOW_MS: '2000',
        },
      },
      async (rig, out) => {
        const sandbox = await SandboxProcess.start(rig, provider.port);
        const workers = await Promise.all(Array.from({ length: s.workers }, () => startMeteredWorker(rig)));

        // Watches the breaker from both sides: each worker's gauge (0 closed, 1 half-open, 2 open) and
        // the health process (the workers' published states). Closed: health says so and no gauge is up.
        const seen: Array<{ at: number; open: boolean; closed: boolean; via: string }> = [];
        let watching = true;
        const watch = (async () => {
          while (watching && !ctx.signal.aborted) {
            const at = Date.now();
            const [health, ...metrics] = await Promise.all([
              fetch(`${rig.fleet.healthUrl}/health`, { signal: AbortSignal.timeout(2000) })
                .then((r) => r.json() as Promise<{ paymentProvider?: { breaker?: string } | null }>)
                .catch(() => undefined),
              ...workers.map((w) => scrape(w.metricsUrl)),
            ]);
            const healthState = health?.paymentProvider?.breaker;
            const gauges = metrics.filter((m) => m !== undefined).map((m) => metricSum(m, 'payment_breaker_state'));
            const healthOpen = healthState === 'open';
            const gaugeOpen = gauges.some((g) => g === 2);
            seen.push({
              at,
              open: healthOpen || gaugeOpen,
              closed: healthState === 'closed' && gauges.length === workers.length && gauges.every((g) => g === 0),
              via: [healthOpen ? 'health' : '', gaugeOpen ? 'gauge' : ''].filter(Boolean).join('+'),
            });
            await pause(250, ctx.signal).catch(() => undefined);
          }
        })();

        const { recorder, load } = timedLoad(ctx, rig.fleet.apiUrl, {
          ratePerSecond: s.ratePerSecond,
          durationMs: s.beforeMs + s.outageMs + s.afterMs,
        });
        await pause(s.beforeMs, ctx.signal);
        const outageAt = Date.now();
        await sandbox.configure({ outage: '503' });
        ctx.progress.log(`payment sandbox: 503 for ${seconds(s.outageMs)}`);
        await pause(s.outageMs, ctx.signal);
        await sandbox.configure({ outage: 'none' });
        const outageEnd = Date.now();
        ctx.progress.log('payment sandbox: outage over');
        await load;
        out.attach('requests', recorder.samples);

        const { statuses } = await settleAndAudit(ctx, rig, out, sandbox, recorder.accepted, {
          timeoutMs: s.drainTimeoutMs,
          final: new Set(['PROCESSED']),
        });
        const drainedAt = Date.now();
        // The beacon publishes every 2 s: give the closed state time to show after the drain.
        await pause(3000, ctx.signal);
        watching = false;
        await watch;

        const opened = seen.filter((x) => x.open);
        const firstOpen = opened[0]?.at;
        const closedAfter = seen.find((x) => x.at > outageEnd && x.closed && x.at > (firstOpen ?? 0));
        const closedAtEnd = seen.length > 0 && seen[seen.length - 1].closed;
        const openMs = firstOpen === undefined ? 0 : (closedAfter?.at ?? Date.now()) - firstOpen;
        const stats = await sandbox.stats();
        out.summary.recoverMs = drainedAt - outageEnd;
        out.summary.fiveXx = serverErrors(recorder.samples).length;
        out.summary.p99Ms = p99(recorder.samples);
        out.figure('POST answers', formatStatuses(recorder.samples));
        out.figure('FAILED', statuses.FAILED ?? 0);
        out.figure('sandbox calls answered 503', stats.unavailable);
        out.figure(
          'breaker open seen (via)',
          firstOpen === undefined
            ? 'never'
            : `${seconds(firstOpen - outageAt)} after the outage began (${[...new Set(opened.map((x) => x.via))].join(', ')})`,
        );
        out.figure('time breaker open (first open → closed after the outage)', seconds(openMs));
        out.figure('time to drain (outage end → all PROCESSED)', seconds(drainedAt - outageEnd));
        out.figure('retry budget vs outage', `${seconds(retryBudgetMs(s))} vs ${seconds(s.outageMs)}`);
        out.check('the outage outlasts the retry budget', s.outageMs > retryBudgetMs(s), seconds(s.outageMs));
        out.check('the breaker opens', firstOpen !== undefined, opened.length);
        out.check(
          'the breaker closes after the outage',
          closedAfter !== undefined && closedAtEnd,
          closedAfter ? `${seconds(closedAfter.at - outageEnd)} after` : 'not closed',
        );
        out.check('0 orders FAILED', (statuses.FAILED ?? 0) === 0, statuses.FAILED ?? 0);
        out.check(
          '0 5xx but 503 (the api is not the target)',
          serverErrors(recorder.samples).filter((e) => e.status !== 503).length === 0,
          formatStatuses(serverErrors(recorder.samples)),
        );
        const unexpected = rig.fleet.unexpectedExits();
        out.check('no process exits', unexpected.length === 0, exitCodes(unexpected) || 'none');
      },
    );
  },
};

// --- #12 ---------------------------------------------------------------------------------------

export interface SlowProviderSizes {
  readonly ratePerSecond: number;
  readonly slowPhaseMs: number;
  readonly afterMs: number;
  readonly workers: number;
  readonly timeoutMs: number;
  readonly slowMs: number;
  readonly drainTimeoutMs: number;
}

/** #12: the provider makes the charge but answers after the worker's timeout: the outcome is unknown. */
export const providerSlow: Scenario<SlowProviderSizes> = {
  id: 12,
  title: 'provider slower than the timeout',
  fault: (s) =>
    `sandbox answers charges after ${s.slowMs} ms (PAYMENT_TIMEOUT_MS ${s.timeoutMs}) for ${seconds(s.slowPhaseMs)} under ${s.ratePerSecond} POST/s, then at once`,
  passLine: 'every order PROCESSED with exactly one succeeded charge (unknown outcomes resolved), 0 double charges',
  sizes: {
    full: {
      ratePerSecond: 20,
      slowPhaseMs: 30_000,
      afterMs: 5000,
      workers: 3,
      timeoutMs: 1000,
      slowMs: 2500,
      drainTimeoutMs: 120_000,
    },
    quick: {
      ratePerSecond: 5,
      slowPhaseMs: 8000,
      afterMs: 2000,
      workers: 2,
      timeoutMs: 1000,
      slowMs: 2500,
      drainTimeoutMs: 60_000,
    },
  },
  async run(ctx, s) {
    const provider = await SandboxProcess.reserve();
    return runScenario(
      ctx,
      { id: this.id, title: this.title, fault: this.fault(s), passLine: this.passLine },
      {
        label: 's12',
        workers: 0,
        health: false,
        env: {
          ...provider.env,
          PAYMENT_TIMEOUT_MS: String(s.timeoutMs),
          PAYMENT_BREAKER_RESET_MS: '1000',
          JOB_BACKOFF_MS: '500',
        },
      },
      async (rig, out) => {
        const sandbox = await SandboxProcess.start(rig, provider.port, { slowMs: s.slowMs });
        const workers = await Promise.all(Array.from({ length: s.workers }, () => startMeteredWorker(rig)));
        const { recorder, load } = timedLoad(ctx, rig.fleet.apiUrl, {
          ratePerSecond: s.ratePerSecond,
          durationMs: s.slowPhaseMs + s.afterMs,
        });
        await pause(s.slowPhaseMs, ctx.signal);
        await sandbox.configure({ slowMs: 0 });
        ctx.progress.log('payment sandbox answers at once again');
        await load;
        out.attach('requests', recorder.samples);

        const { audit, statuses } = await settleAndAudit(ctx, rig, out, sandbox, recorder.accepted, {
          timeoutMs: s.drainTimeoutMs,
          final: new Set(['PROCESSED']),
        });
        const scraped = await Promise.all(workers.map((w) => scrape(w.metricsUrl)));
        const timeouts = scraped.reduce(
          (n, text) => n + (text ? metricSum(text, 'payment_provider_errors_total', { outcome: 'timeout' }) : 0),
          0,
        );
        const succeeded = [...audit.standing.values()].reduce((a, b) => a + b, 0);
        out.summary.fiveXx = serverErrors(recorder.samples).length;
        out.summary.p99Ms = p99(recorder.samples);
        out.figure('POST answers', formatStatuses(recorder.samples));
        out.figure('PROCESSED', statuses.PROCESSED ?? 0);
        out.figure('timeouts seen (payment_provider_errors_total{outcome="timeout"})', timeouts);
        out.figure(
          'look-ups at the provider after a lost answer (find_charge ok)',
          scraped.reduce(
            (n, text) =>
              n +
              (text
                ? metricSum(text, 'payment_provider_call_duration_seconds_count', {
                    operation: 'find_charge',
                    outcome: 'ok',
                  })
                : 0),
            0,
          ),
        );
        out.figure('standing charges', succeeded);
        out.check('charges timed out (the fault hit)', timeouts > 0, timeouts);
        out.check(
          'one standing charge per order',
          succeeded === recorder.accepted.size,
          `${succeeded} for ${recorder.accepted.size} orders`,
        );
        const unexpected = rig.fleet.unexpectedExits();
        out.check('no process exits', unexpected.length === 0, exitCodes(unexpected) || 'none');
      },
    );
  },
};
