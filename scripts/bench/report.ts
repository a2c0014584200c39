import type { CommandCounts } from './backends.js';
import { COUNT_CONNECTIONS, type CountFigures, type StepCounts } from './phase-counts.js';
import type { FairnessFigures } from './phase-fairness.js';
import type { GrowthLevel } from './phase-growth.js';
import type {
  E2eFigures,
  IntakeFigures,
  IntakeVariant,
  ProcessingFigures,
  WebhookFigures,
} from './phase-throughput.js';
import type { ConnectionsFigures } from './phase-connections.js';
import type { FleetFigures, FleetSide } from './phase-fleet.js';
import { ORDER_BODY } from './seed.js';
import { fmt, mib, ratio } from './stats.js';

/** Everything one run measured; phases skipped (or broken) are absent. */
export interface BenchFigures {
  intake?: Partial<Record<IntakeVariant, IntakeFigures>> & { system: IntakeFigures; bare: IntakeFigures };
  processing?: ProcessingFigures[];
  e2e?: { system: E2eFigures; bare: E2eFigures; rateNote: string };
  counts?: CountFigures;
  growth?: GrowthLevel[];
  webhooks?: WebhookFigures;
  connections?: ConnectionsFigures;
  fleet?: FleetFigures;
  fairness?: FairnessFigures;
}

export interface BenchMeta {
  readonly startedAt: string;
  readonly seconds: number;
  /** Wall-clock seconds of each phase run, in run order. */
  readonly phaseSeconds: Readonly<Record<string, number>>;
  readonly mode: 'default' | 'quick' | 'profile';
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly memoryGiB: number;
    readonly node: string;
    readonly platform: string;
    /** 1-minute load average at the start and at the end: other work on the machine. */
    readonly loadAverage: { readonly start: number; readonly end: number };
  };
  readonly backends: {
    readonly throughput: { readonly redis: string; readonly mongo: string };
    readonly counts: { readonly redis: string; readonly mongo: string };
  };
  readonly settings: Record<string, string>;
  readonly sizes: unknown;
  readonly notes: readonly string[];
  readonly errors: readonly string[];
}

export type Verdict = 'PASS' | 'FAIL' | 'info' | 'n/a';

/** One row of the table: the figure, its baseline, the ratio, the target and the verdict. */
export interface Row {
  readonly figure: string;
  readonly system: string;
  readonly baseline: string;
  readonly ratio: string;
  readonly target: string;
  readonly verdict: Verdict;
}

const verdict = (ok: boolean | undefined): Verdict => (ok === undefined ? 'n/a' : ok ? 'PASS' : 'FAIL');
/** `value <= limit`, or no verdict when the value was not measured. */
const atMost = (value: number | undefined, limit: number) => verdict(value === undefined ? undefined : value <= limit);
const counted = (value: number | undefined) => (value === undefined ? NOT_MEASURED : fmt(value, 2));
const x = (value: number) => (Number.isFinite(value) ? `${fmt(value, 2)}×` : 'n/a');

/** What a figure the bench could not measure reads as: never a number, never PASS. */
export const NOT_MEASURED = 'not measured';

/**
 * MongoDB commands the saga needs per processed order on the tracked-SKU path: claim (findAndModify),
 * `steps.reserve` and `steps.charge` checkpoints (2 updates), effect (insert), complete (update) — 5 —
 * plus per SKU one update to reserve and one to sell. The bench order has 2 SKUs: 9. (Untracked SKUs
 * cost one find more per SKU on each of reserve and sale: 13.)
 */
export const SAGA_SKUS = new Set(ORDER_BODY.items.map((i) => i.sku)).size;
export const SAGA_MONGO_PER_ORDER = 5 + 2 * SAGA_SKUS;

/** "2.00 (insert 1.00, update 1.00)": per order, with the commands that make it up. */
function perOrder(counts: CommandCounts, orders: number, total: number | undefined, top = 4): string {
  if (total === undefined) return NOT_MEASURED;
  const parts = Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, n]) => `${name} ${fmt(n / orders, 2)}`);
  return `${fmt(total, 2)}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

function mongoCell(s: StepCounts): string {
  return perOrder(s.mongo, s.orders, s.mongoPerOrder);
}

function redisCell(s: StepCounts): string {
  return `${fmt(s.redisPerOrder, 1)} (${fmt(s.scriptsPerOrder, 2)} scripts)`;
}

/** The table: every figure beside its target, with PASS/FAIL where the issue sets a target. */
export function buildRows(f: BenchFigures): Row[] {
  const rows: Row[] = [];
  if (f.intake) {
    const { system: s, bare: b } = f.intake;
    const r = ratio(s.rps, b.rps);
    rows.push({
      figure: 'Intake, accepted orders/s (autocannon, 50 connections)',
      system: fmt(s.rps),
      baseline: `bare ${fmt(b.rps)}`,
      ratio: x(r),
      target: '≥ 1.0× bare',
      verdict: verdict(Number.isFinite(r) ? r >= 1 : undefined),
    });
    const r99 = ratio(s.p99Ms, b.p99Ms);
    rows.push({
      figure: 'Intake latency p50 / p99 at 50 connections, ms',
      system: `${fmt(s.p50Ms, 1)} / ${fmt(s.p99Ms, 1)}`,
      baseline: `bare ${fmt(b.p50Ms, 1)} / ${fmt(b.p99Ms, 1)}`,
      ratio: `${x(ratio(s.p50Ms, b.p50Ms))} / ${x(r99)}`,
      target: 'p99 ≤ 1.5× bare',
      verdict: verdict(Number.isFinite(r99) && s.p99Ms > 0 ? r99 <= 1.5 : undefined),
    });
    const idleGap = s.idle && b.idle ? s.idle.p50Ms - b.idle.p50Ms : undefined;
    rows.push({
      figure: 'Intake at 1 connection (one request at a time), p50 / p99 ms',
      system: s.idle ? `${fmt(s.idle.p50Ms, 2)} / ${fmt(s.idle.p99Ms, 2)}` : NOT_MEASURED,
      baseline: b.idle ? `bare ${fmt(b.idle.p50Ms, 2)} / ${fmt(b.idle.p99Ms, 2)}` : NOT_MEASURED,
      ratio: idleGap === undefined ? '—' : `${idleGap >= 0 ? '+' : ''}${fmt(idleGap, 2)} ms (p50)`,
      target: 'p50 within 1 ms of bare',
      verdict: atMost(idleGap, 1),
    });
    const off = f.intake.system_gc_off;
    if (off) {
      rows.push({
        figure:
          'Ablation: intake with group commit off (INTAKE_GROUP_COMMIT=off), orders/s · p99 ms · CPU µs/order · idle p50',
        system: `${fmt(off.rps)} · ${fmt(off.p99Ms, 1)} · ${fmt(off.cpuUsPerOrder)}${off.idle ? ` · p50 at 1 connection ${fmt(off.idle.p50Ms, 2)} ms` : ''}`,
        baseline: `on ${fmt(s.rps)} · ${fmt(s.p99Ms, 1)} · ${fmt(s.cpuUsPerOrder)}${s.idle ? ` · ${fmt(s.idle.p50Ms, 2)} ms` : ''}`,
        ratio: `${x(ratio(s.rps, off.rps))} (on ÷ off, orders/s) · ${x(ratio(off.rps, b.rps))} bare when off`,
        target: '—',
        verdict: 'info',
      });
    }
    const info = f.intake.system_info;
    if (info) {
      rows.push({
        figure: 'Intake at LOG_LEVEL=info (one access line per request), orders/s',
        system: fmt(info.rps),
        baseline: `api at warn ${fmt(s.rps)}`,
        ratio: x(ratio(info.rps, s.rps)),
        target: '—',
        verdict: 'info',
      });
    }
    rows.push({
      figure: 'Intake CPU per order (api process), µs',
      system: fmt(s.cpuUsPerOrder),
      baseline: `bare ${fmt(b.cpuUsPerOrder)}${info ? ` · api at info ${fmt(info.cpuUsPerOrder)}` : ''}`,
      ratio: x(ratio(s.cpuUsPerOrder, b.cpuUsPerOrder)),
      target: '—',
      verdict: 'info',
    });
  }
  for (const c of [...new Set((f.processing ?? []).map((p) => p.concurrency))]) {
    const get = (v: string) => f.processing!.find((p) => p.concurrency === c && p.variant === v && !p.label);
    const s = get('system');
    const b = get('bare');
    const raw = get('raw');
    const r = ratio(s?.ordersPerSecond ?? NaN, b?.ordersPerSecond ?? NaN);
    rows.push({
      figure: `Processing, orders/s, one worker, concurrency ${c}`,
      system: fmt(s?.ordersPerSecond),
      baseline: `bare ${fmt(b?.ordersPerSecond)} · raw BullMQ ${fmt(raw?.ordersPerSecond)}`,
      ratio: x(r),
      target: '≥ 1.0× bare',
      verdict: verdict(Number.isFinite(r) ? r >= 1 : undefined),
    });
    rows.push({
      figure: `Processing CPU per order (worker process), concurrency ${c}, µs`,
      system: fmt(s?.cpuUsPerOrder),
      baseline: `bare ${fmt(b?.cpuUsPerOrder)} · raw ${fmt(raw?.cpuUsPerOrder)}`,
      ratio: x(ratio(s?.cpuUsPerOrder ?? NaN, b?.cpuUsPerOrder ?? NaN)),
      target: '—',
      verdict: 'info',
    });
    const off = f.processing!.find((p) => p.concurrency === c && p.label === 'unbatched');
    if (s && off) {
      rows.push({
        figure: `Ablation: processing with WORKER_BATCH_WRITES=off, concurrency ${c}, orders/s · CPU µs/order`,
        system: `${fmt(off.ordersPerSecond)} · ${fmt(off.cpuUsPerOrder)}`,
        baseline: `on ${fmt(s.ordersPerSecond)} · ${fmt(s.cpuUsPerOrder)}`,
        ratio: `${x(ratio(s.ordersPerSecond, off.ordersPerSecond))} (on ÷ off, orders/s) · ${x(ratio(off.ordersPerSecond, b?.ordersPerSecond ?? NaN))} bare when off`,
        target: '—',
        verdict: 'info',
      });
    }
  }
  if (f.fleet) {
    const { system: s, bare: b } = f.fleet;
    const r = ratio(s.rate, b.rate);
    // The rate whose whole hold stayed bounded, and every hold that did not (never shown as held).
    const held = (side: FleetSide) => {
      const failed = side.holds.filter((h) => !h.bounded);
      const notes = failed.map(
        (h) =>
          `${fmt(h.rate)}/s did NOT stay bounded over its ${fmt(h.seconds)} s hold: backlog ${fmt(h.backlogEnd)}${h.failed > 0 ? `, ${fmt(h.failed)} POSTs failed` : ''}`,
      );
      const figure = side.rate > 0 ? `${side.lowerBound ? '≥ ' : ''}${fmt(side.rate)}` : 'none held';
      return `${figure}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`;
    };
    // A side whose every step held has only a lower bound: the ratio is then a bound too, and decides
    // the target only in one direction. A side with no rate held leaves the ratio unmeasured.
    const decided = Number.isFinite(r) && s.rate > 0 && b.rate > 0 && (r >= 1 ? !b.lowerBound : !s.lowerBound);
    rows.push({
      figure: `Whole fleet (intake + 2 workers): highest rate with the backlog bounded, orders/s (held ${fmt(f.fleet.holdSeconds)} s)`,
      system: held(s),
      baseline: `bare fleet ${held(b)}`,
      ratio:
        s.rate > 0 && b.rate > 0
          ? `${s.lowerBound && !b.lowerBound ? '≥ ' : b.lowerBound && !s.lowerBound ? '≤ ' : ''}${x(r)}`
          : 'n/a',
      target: '≥ 1.0× bare fleet',
      verdict: verdict(decided ? r >= 1 : undefined),
    });
    // The hold that stayed bounded; else the last one run, said so.
    const cpu = (side: FleetSide) =>
      `${Object.entries(side.hold.cpuUsPerOrder)
        .map(([name, us]) => `${name.replace(/^fleet-/, '')} ${fmt(us)}`)
        .join(' · ')} (at ${fmt(side.hold.rate)}/s${side.hold.bounded ? '' : ', not bounded'})`;
    rows.push({
      figure: 'Whole fleet: CPU per order of each process during the hold, µs',
      system: cpu(s),
      baseline: cpu(b),
      ratio: x(
        ratio(
          Object.values(s.hold.cpuUsPerOrder).reduce((a, v) => a + v, 0),
          Object.values(b.hold.cpuUsPerOrder).reduce((a, v) => a + v, 0),
        ),
      ),
      target: '— (reported)',
      verdict: 'info',
    });
  }
  if (f.e2e) {
    const { system: s, bare: b } = f.e2e;
    const r = ratio(s.p99Ms, b.p99Ms);
    rows.push({
      figure: `End to end accepted → PROCESSED, p50 / p99 ms, at ${s.rate}/s`,
      system: `${fmt(s.p50Ms)} / ${fmt(s.p99Ms)}`,
      baseline: `bare ${fmt(b.p50Ms)} / ${fmt(b.p99Ms)}`,
      ratio: `${x(r)} (p99)`,
      target: 'p99 ≤ 1.5× bare',
      verdict: verdict(Number.isFinite(r) ? r <= 1.5 : undefined),
    });
  }
  if (f.counts) {
    const { system: s, bare: b, raw } = f.counts;
    rows.push({
      figure: `MongoDB commands per accepted order (api, ${COUNT_CONNECTIONS} connections)`,
      system: mongoCell(s.intake),
      baseline: `bare ${counted(b.intake.mongoPerOrder)}`,
      ratio: '—',
      target: '< 1 (group commit)',
      verdict: verdict(s.intake.mongoPerOrder === undefined ? undefined : s.intake.mongoPerOrder < 1),
    });
    rows.push({
      figure: `MongoDB commands per processed order (worker; saga, ${SAGA_SKUS} tracked SKUs)`,
      system: mongoCell(s.processing),
      baseline: `bare ${mongoCell(b.processing)}`,
      ratio:
        s.processing.mongoPerOrder === undefined || b.processing.mongoPerOrder === undefined
          ? '—'
          : x(ratio(s.processing.mongoPerOrder, b.processing.mongoPerOrder)),
      target: `≤ ${SAGA_MONGO_PER_ORDER} (5 + 2 per SKU)`,
      verdict: atMost(s.processing.mongoPerOrder, SAGA_MONGO_PER_ORDER),
    });
    // The server's CPU per order: a bulk write is one command, but the server works per statement.
    const serverCpu = (label: string, sys: StepCounts, bare: StepCounts) => {
      const [mine, theirs] = [sys.mongoCpuUsPerOrder, bare.mongoCpuUsPerOrder];
      rows.push({
        figure: `MongoDB server CPU per ${label}, µs (the private server; its command log included)`,
        system: mine === undefined ? NOT_MEASURED : fmt(mine),
        baseline: theirs === undefined ? NOT_MEASURED : `bare ${fmt(theirs)}`,
        ratio: mine === undefined || theirs === undefined ? '—' : x(ratio(mine, theirs)),
        target: '—',
        verdict: 'info',
      });
    };
    serverCpu(`accepted order (${COUNT_CONNECTIONS} connections)`, s.intake, b.intake);
    serverCpu('processed order', s.processing, b.processing);
    rows.push({
      figure: 'MongoDB commands per idempotent replay (api)',
      system: mongoCell(s.replay),
      baseline: '—',
      ratio: '—',
      target: '≤ 2',
      verdict: atMost(s.replay.mongoPerOrder, 2),
    });
    const steps = [
      ['intake (api)', s.intake, raw.intake],
      ['processing (worker)', s.processing, raw.processing],
    ] as const;
    for (const [label, sys, rawStep] of steps) {
      const r = ratio(sys.redisPerOrder, rawStep.redisPerOrder);
      rows.push({
        figure: `Redis commands per order, ${label}`,
        system: redisCell(sys),
        baseline: `raw BullMQ ${redisCell(rawStep)}`,
        ratio: x(r),
        target: '≤ 1.2× raw BullMQ',
        verdict: verdict(Number.isFinite(r) ? r <= 1.2 : undefined),
      });
    }
    const sysTotal = s.intake.redisPerOrder + s.processing.redisPerOrder;
    const rawTotal = raw.intake.redisPerOrder + raw.processing.redisPerOrder;
    rows.push({
      figure: 'Redis commands per order, intake + processing',
      system: fmt(sysTotal, 1),
      baseline: `raw BullMQ ${fmt(rawTotal, 1)} · bare ${fmt(b.intake.redisPerOrder + b.processing.redisPerOrder, 1)}`,
      ratio: x(ratio(sysTotal, rawTotal)),
      target: '≤ 1.2× raw BullMQ',
      verdict: verdict(ratio(sysTotal, rawTotal) <= 1.2),
    });
    rows.push({
      figure: 'Redis memory per waiting order, bytes',
      system: fmt(s.redisBytesPerWaitingOrder),
      baseline: `raw BullMQ ${fmt(raw.redisBytesPerWaitingOrder)}`,
      ratio: x(ratio(s.redisBytesPerWaitingOrder, raw.redisBytesPerWaitingOrder)),
      target: '—',
      verdict: 'info',
    });
  }
  if (f.intake) {
    rows.push({
      figure: 'Peak RSS of the api under load (VmHWM)',
      system: mib(f.intake.system.peakRssBytes),
      baseline: `bare ${mib(f.intake.bare.peakRssBytes)}`,
      ratio: x(ratio(f.intake.system.peakRssBytes, f.intake.bare.peakRssBytes)),
      target: '—',
      verdict: 'info',
    });
  }
  if (f.processing?.length) {
    const c = Math.max(...f.processing.map((p) => p.concurrency));
    const s = f.processing.find((p) => p.concurrency === c && p.variant === 'system' && !p.label);
    const b = f.processing.find((p) => p.concurrency === c && p.variant === 'bare');
    rows.push({
      figure: `Peak RSS of the worker under load (VmHWM), concurrency ${c}`,
      system: s ? mib(s.peakRssBytes) : 'n/a',
      baseline: `bare ${b ? mib(b.peakRssBytes) : 'n/a'}`,
      ratio: x(ratio(s?.peakRssBytes ?? NaN, b?.peakRssBytes ?? NaN)),
      target: '—',
      verdict: 'info',
    });
  }
  if (f.webhooks) {
    const { off, dead } = f.webhooks;
    const r = ratio(dead.ordersPerSecond, off.ordersPerSecond);
    rows.push({
      figure: 'Processing with a dead webhook receiver, orders/s, concurrency 10',
      system: fmt(dead.ordersPerSecond),
      baseline: `webhooks off ${fmt(off.ordersPerSecond)}`,
      ratio: x(r),
      target: '≥ 0.95×',
      verdict: verdict(Number.isFinite(r) ? r >= 0.95 : undefined),
    });
    rows.push({
      figure:
        'Processing with a dead webhook receiver: worker CPU per order, µs (event read, add and delivery attempts included)',
      system: fmt(dead.cpuUsPerOrder),
      baseline: `webhooks off ${fmt(off.cpuUsPerOrder)}`,
      ratio: x(ratio(dead.cpuUsPerOrder, off.cpuUsPerOrder)),
      target: '—',
      verdict: 'info',
    });
  }
  if (f.connections) {
    const c = f.connections;
    const failures = c.non2xx + c.errors + c.refused + c.resets + c.openFailures;
    rows.push({
      figure: `${fmt(c.connections)} keep-alive connections, one order every ${fmt(c.intervalSeconds, 1)} s each (${fmt(c.offeredRate)}/s: ${c.rateNote}), ${fmt(c.seconds)} s, api alone`,
      system: `${fmt(c.opened)} opened (${c.openFailures} failed); ${fmt(c.ok)} of ${fmt(c.sent)} orders accepted; non-2xx ${c.non2xx}, errors ${c.errors}, refused ${c.refused}, reset ${c.resets}, reconnects ${c.reconnects}`,
      baseline: '—',
      ratio: '—',
      target: '0 errors, 0 refused or reset',
      verdict: verdict(c.sent > 0 ? failures === 0 && c.reconnects === 0 : undefined),
    });
    rows.push({
      figure: `${fmt(c.connections)} connections: latency p50 / p99 / max ms · api peak RSS · api CPU µs/order`,
      system: `${fmt(c.p50Ms, 1)} / ${fmt(c.p99Ms, 1)} / ${fmt(c.maxMs)} · ${mib(c.apiPeakRssBytes)} · ${fmt(c.apiCpuUsPerOrder)}`,
      baseline: '—',
      ratio: '—',
      target: 'p99 and RSS reported',
      verdict: 'info',
    });
  }
  if (f.fairness) rows.push(...fairnessRows(f.fairness));
  if (f.growth?.length) {
    const first = f.growth[0];
    const last = f.growth[f.growth.length - 1];
    const levels = f.growth.map((g) => `${fmt(g.stored / 1000, 0)}k`).join(' / ');
    for (const key of ['intake', 'processing'] as const) {
      const r = ratio(last[key].cpuUs, first[key].cpuUs);
      const proc = key === 'intake' ? 'api' : 'worker';
      // Without the server's CPU (a server the bench did not start) the figure is the process's only.
      const dbKnown = f.growth.every((g) => g[key].dbCpuUs !== undefined);
      const who = dbKnown ? `${proc} + MongoDB` : `${proc} only, MongoDB CPU ${NOT_MEASURED}`;
      rows.push({
        figure: `Growth: ${key} CPU µs per order (${who}) at ${levels} stored`,
        system: f.growth.map((g) => fmt(g[key].cpuUs)).join(' / '),
        baseline: `at ${fmt(first.stored / 1000, 0)}k: ${fmt(first[key].cpuUs)}`,
        ratio: x(r),
        target: `${fmt(last.stored / 1000, 0)}k within 10% of ${fmt(first.stored / 1000, 0)}k`,
        verdict: verdict(Number.isFinite(r) ? r <= 1.1 : undefined),
      });
      rows.push({
        figure: `Growth: ${key} orders/s (wall clock) and MongoDB commands per order`,
        system: f.growth.map((g) => fmt(g[key].ordersPerSecond)).join(' / '),
        baseline: `commands ${f.growth.map((g) => counted(g[key].mongoPerOrder)).join(' / ')}`,
        ratio: x(ratio(last[key].ordersPerSecond, first[key].ordersPerSecond)),
        target: '—',
        verdict: 'info',
      });
    }
  }
  return rows;
}

const HEAD = ['figure', 'system', 'baseline (same run)', 'ratio', 'target', 'result'] as const;

function cells(r: Row): string[] {
  return [r.figure, r.system, r.baseline, r.ratio, r.target, r.verdict];
}

/** The table as aligned text for a terminal. */
export function textTable(rows: readonly Row[]): string {
  const all = [[...HEAD], ...rows.map(cells)];
  const widths = HEAD.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join(' │ ');
  const sep = widths.map((w) => '─'.repeat(w)).join('─┼─');
  return [line(all[0]), sep, ...all.slice(1).map(line)].join('\n');
}

export function markdownTable(rows: readonly Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${HEAD.join(' | ')} |`,
    `| ${HEAD.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${cells(r).map(esc).join(' | ')} |`),
  ].join('\n');
}

/** The lines that say how the figures were made; printed and written with the table. */
export function methodNotes(meta: BenchMeta): string[] {
  return [
    `Machine: ${meta.machine.cpus} CPUs (${meta.machine.cpuModel}), ${meta.machine.memoryGiB} GiB, Node ${meta.machine.node}, ${meta.machine.platform}; 1-min load average ${fmt(meta.machine.loadAverage.start, 2)} at start, ${fmt(meta.machine.loadAverage.end, 2)} at end.`,
    `Throughput and latency against ${meta.backends.throughput.redis} and ${meta.backends.throughput.mongo}, each phase in its own database and queue prefix (removed afterwards).`,
    `Command counts, Redis memory and growth against ${meta.backends.counts.redis} and ${meta.backends.counts.mongo}: INFO commandstats and op counters are server-wide, so only a server nobody else uses gives exact counts.`,
    `Real processes: node dist/api/main.js and dist/worker/main.js with ${Object.entries(meta.settings)
      .map(([k, v]) => `${k}=${v}`)
      .join(
        ' ',
      )}; rate limiting off and logging at warn (as the issue asks); reconciler ticks moved out of the measured windows.`,
    'Baselines are minimal plain code in scripts/bench/bare-*.ts (no validation, logging or metrics), run as child processes like the real ones; the bare processing worker makes the saga’s MongoDB commands and provider wait by hand (claim, reserve per SKU, two checkpoints, the charge wait, sale per SKU, effect, complete).',
    `Both workers take the tracked-SKU path: the bench stocks the order’s ${SAGA_SKUS} SKUs (upserted into \`inventory\` before each worker starts, stock no run exhausts).`,
    'Other work shares this machine, so throughput and latency are noisy: every such figure is a ratio against a baseline measured in the same run, or a count that noise cannot move.',
    'Redis commands are INFO commandstats calls, which include the commands BullMQ’s Lua scripts run inside Redis; "scripts" counts EVALSHA/EVAL round trips.',
  ];
}

export function markdownReport(meta: BenchMeta, rows: readonly Row[], figures: BenchFigures, folder: string): string {
  const out: string[] = [];
  out.push(`# Benchmark ${meta.startedAt} (${meta.mode})`, '');
  const perPhase = Object.entries(meta.phaseSeconds)
    .map(([phase, s]) => `${phase} ${fmt(s, 0)} s`)
    .join(', ');
  out.push(`Results folder: \`${folder}\` · duration ${fmt(meta.seconds)} s${perPhase ? ` (${perPhase})` : ''}`, '');
  out.push(markdownTable(rows), '');
  out.push('## How these figures were made', '');
  for (const n of [...methodNotes(meta), ...meta.notes]) out.push(`- ${n}`);
  if (meta.errors.length) {
    out.push('', '## Phases that broke', '');
    for (const e of meta.errors) out.push(`- ${e.split('\n')[0]}`);
  }
  out.push('', '## Details', '');
  if (figures.intake) {
    out.push(
      '### Intake rounds',
      '',
      '| variant | round | req/s | p50 ms | p99 ms | non-2xx | errors |',
      '| --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const v of [figures.intake.bare, figures.intake.system, figures.intake.system_info]) {
      if (!v) continue;
      v.rounds.forEach((r, i) =>
        out.push(
          `| ${v.variant} | ${i + 1} | ${fmt(r.rps)} | ${fmt(r.p50Ms, 1)} | ${fmt(r.p99Ms, 1)} | ${r.non2xx} | ${r.errors} |`,
        ),
      );
    }
    out.push('');
  }
  if (figures.processing) {
    out.push(
      '### Processing runs',
      '',
      '| variant | concurrency | orders | seconds | orders/s | CPU µs/order | peak RSS |',
      '| --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const p of figures.processing) {
      out.push(
        `| ${p.variant}${p.label ? ` (${p.label})` : ''} | ${p.concurrency} | ${p.orders} | ${fmt(p.seconds, 2)} | ${fmt(p.ordersPerSecond)} | ${fmt(p.cpuUsPerOrder)} | ${mib(p.peakRssBytes)} |`,
      );
    }
    out.push('');
  }
  if (figures.e2e) {
    out.push(
      '### End to end',
      '',
      figures.e2e.rateNote,
      '',
      '| variant | rate/s | sent | measured | p50 ms | p99 ms | max ms | HTTP p99 ms | failed |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const e of [figures.e2e.bare, figures.e2e.system]) {
      out.push(
        `| ${e.variant} | ${e.rate} | ${e.sent} | ${e.measured} | ${fmt(e.p50Ms)} | ${fmt(e.p99Ms)} | ${fmt(e.maxMs)} | ${fmt(e.httpP99Ms, 1)} | ${e.failed} |`,
      );
    }
    out.push('');
  }
  if (figures.counts) {
    const c = figures.counts;
    out.push('### Commands per order, by command', '');
    const steps: [string, StepCounts][] = [
      ['system intake', c.system.intake],
      ['system replay', c.system.replay],
      ['system processing', c.system.processing],
      ['bare intake', c.bare.intake],
      ['bare processing', c.bare.processing],
      ['raw BullMQ add', c.raw.intake],
      ['raw BullMQ processing', c.raw.processing],
    ];
    out.push(
      '| step | orders | MongoDB (by command) | op counters Δ (server-wide) | Redis (by command, incl. inside scripts) |',
      '| --- | --- | --- | --- | --- |',
    );
    for (const [label, s] of steps) {
      out.push(
        `| ${label} | ${s.orders} | ${perOrder(s.mongo, s.orders, s.mongoPerOrder, 9)} | ${perOrder(s.opcounters, s.orders, Object.values(s.opcounters).reduce((a, b) => a + b, 0) / s.orders, 6)} | ${perOrder(s.redis, s.orders, s.redisPerOrder, 12)} |`,
      );
    }
    out.push('', `Replay answers by status: ${JSON.stringify(c.replayStatuses)}`, '');
  }
  if (figures.growth) {
    out.push(
      '### Growth',
      '',
      '| stored | dead | intake/s | api µs | db µs | intake cmds | processing/s | worker µs | db µs | processing cmds |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const g of figures.growth) {
      out.push(
        `| ${g.stored} | ${g.dead} | ${fmt(g.intake.ordersPerSecond)} | ${fmt(g.intake.processCpuUs)} | ${fmt(g.intake.dbCpuUs)} | ${counted(g.intake.mongoPerOrder)} | ${fmt(g.processing.ordersPerSecond)} | ${fmt(g.processing.processCpuUs)} | ${fmt(g.processing.dbCpuUs)} | ${counted(g.processing.mongoPerOrder)} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}

/** The fair share's rows: the others' p99 with a flood (on, off) against no flood, and what it costs. */
function fairnessRows(f: FairnessFigures): Row[] {
  const { noFlood, fair, off } = f;
  const flood = `${fmt(fair.flood)} orders of one customer, then ${fair.others} from ${fmt(fair.others / 10)} others`;
  const p99 = (r: FairnessFigures['fair']) => `${fmt(r.othersP99Ms)} ms (p50 ${fmt(r.othersP50Ms)})`;
  const fairRatio = ratio(fair.othersP99Ms, noFlood.othersP99Ms);
  return [
    {
      figure: `Fairness: others' p99 POST→PROCESSED, FAIR_SHARE_KEY=customerId (${flood})`,
      system: p99(fair),
      baseline: `no flood ${p99(noFlood)}`,
      ratio: x(fairRatio),
      target: '≤ 2×',
      verdict: verdict(Number.isFinite(fairRatio) ? fairRatio <= 2 : undefined),
    },
    {
      figure: `Fairness: others' p99 POST→PROCESSED, FAIR_SHARE_KEY=off (same flood, for contrast)`,
      system: p99(off),
      baseline: `no flood ${p99(noFlood)}`,
      ratio: x(ratio(off.othersP99Ms, noFlood.othersP99Ms)),
      target: '—',
      verdict: 'info',
    },
    {
      figure: `Fairness: the flooding customer's progress while the others ran (max ${f.maxActivePerCustomer} of ${f.fleetConcurrency} slots)`,
      system: `${fmt(fair.floodPerSecond)} orders/s, ${fmt(100 * fair.floodShare)}% of processed`,
      baseline: `off: ${fmt(off.floodPerSecond)} orders/s, ${fmt(100 * off.floodShare)}%`,
      ratio: x(ratio(fair.floodPerSecond, off.floodPerSecond)),
      target: '> 0 (progresses)',
      verdict: verdict(fair.floodPerSecond > 0),
    },
    {
      figure: 'Fairness: Redis commands (EVALSHA) per processed order in the window, on vs off',
      system: `${fmt(fair.redisPerOrder, 1)} (${fmt(fair.scriptsPerOrder, 1)}), ${fmt(fair.deferralsPerOrder, 2)} deferrals/order`,
      baseline: `off ${fmt(off.redisPerOrder, 1)} (${fmt(off.scriptsPerOrder, 1)}); no flood ${fmt(noFlood.redisPerOrder, 1)}`,
      ratio: x(ratio(fair.redisPerOrder, off.redisPerOrder)),
      target: '—',
      verdict: 'info',
    },
  ];
}
