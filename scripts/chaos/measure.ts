import { setTimeout as sleep } from 'node:timers/promises';
import { LOCK_DURATION_MS, STALLED_INTERVAL_MS, fairSlotsKey } from '../../worker/settings.js';
import { Recorder, formatStatuses, percentile, steadyLoad, type Sample } from './load.js';
import type { Outcome, Rig } from './rig.js';
import type { ScenarioContext } from './types.js';
import { effectReport, readOrders, waitSettled, type Settlement } from './verify.js';

/**
 * How long a crashed attempt may leave its order PROCESSING: the dead worker's lock runs out
 * (LOCK_DURATION_MS at most), the next stalled check of a live worker hands the job back (within
 * STALLED_INTERVAL_MS, two checks on an unlucky beat), and a worker claims it again. Ten seconds of
 * slack for a busy two-core machine and a backlog in front of the job.
 */
export const RECOVERY_BOUND_MS = LOCK_DURATION_MS + 2 * STALLED_INTERVAL_MS + 10_000;

/** Waits `ms`, or rejects at once when the run is interrupted. */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal });
}

/** `12.3 s` */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Progress of a load: answers so far against the planned total, with the statuses seen. */
export function loadProgress(ctx: ScenarioContext, recorder: Recorder, planned: number) {
  ctx.progress.phase('load', planned);
  return () => ctx.progress.update(recorder.samples.length, formatStatuses(recorder.samples));
}

/**
 * Steady load for `durationMs` at `ratePerSecond` (a `getShare` of it reads), recorded and shown as
 * the scenario's progress: the before-fault-after load most scenarios put on the api.
 */
export function timedLoad(
  ctx: ScenarioContext,
  apiUrl: string,
  options: { readonly ratePerSecond: number; readonly durationMs: number; readonly getShare?: number },
) {
  const recorder = new Recorder();
  const planned = Math.floor((options.durationMs / 1000) * options.ratePerSecond);
  const load = steadyLoad({
    apiUrl,
    recorder,
    ratePerSecond: options.ratePerSecond,
    durationMs: options.durationMs,
    maxRequests: planned,
    getShare: options.getShare,
    signal: ctx.signal,
    onSample: loadProgress(ctx, recorder, planned),
  });
  return { recorder, load, planned };
}

/** p99 of the samples' latencies, rounded. */
export function p99(samples: readonly Sample[]): number {
  return Math.round(
    percentile(
      samples.map((s) => s.ms),
      99,
    ),
  );
}

/** Responses with a 5xx status, or no answer at all. */
export function serverErrors(samples: readonly Sample[]): Sample[] {
  return samples.filter((s) => s.status >= 500 || s.status === 0);
}

/**
 * Waits until every order of `ids` is PROCESSED or FAILED (at most `timeoutMs`), then checks the
 * battery's two invariants: nothing lost, no effect twice. Adds figures and checks to `out`.
 */
export async function verifyOrders(
  ctx: ScenarioContext,
  rig: Rig,
  out: Outcome,
  ids: ReadonlySet<string> | readonly string[],
  options: { readonly timeoutMs: number; readonly allProcessed?: boolean },
): Promise<Settlement> {
  const wanted = [...ids];
  ctx.progress.phase('waiting until every accepted order is PROCESSED or FAILED', wanted.length);
  const settlement = await waitSettled(rig.db, wanted, {
    timeoutMs: options.timeoutMs,
    signal: ctx.signal,
    onPoll: (settled, total) => ctx.progress.update(settled, `of ${total} settled`),
  });
  if (ctx.signal.aborted) throw new Error('interrupted');
  const effects = await effectReport(rig.db, wanted);
  const processed = settlement.statuses.PROCESSED ?? 0;
  const failed = settlement.statuses.FAILED ?? 0;
  out.summary.accepted = wanted.length;
  out.summary.lost = settlement.lost.length;
  out.summary.duplicateEffects = effects.duplicates;
  out.figure('orders accepted (2xx)', wanted.length);
  out.figure('PROCESSED / FAILED', `${processed} / ${failed}`);
  out.figure('lost (neither, after the wait)', settlement.lost.length);
  out.figure(
    'time until all settled',
    settlement.settled ? seconds(settlement.ms) : `not within ${seconds(options.timeoutMs)}`,
  );
  out.figure('effect records / duplicate effects', `${effects.effects} / ${effects.duplicates}`);
  out.figure(
    'PROCESSED without effect / FAILED with effect',
    `${effects.processedWithoutEffect} / ${effects.failedWithEffect}`,
  );
  out.figure(
    're-runs whose effect was already recorded',
    rig.fleet.count(/effect already recorded by an earlier attempt/),
  );
  out.check('0 lost', settlement.lost.length === 0, settlement.lost.length);
  out.check('0 duplicate effects', effects.duplicates === 0, effects.duplicates);
  out.check(
    'every PROCESSED order has its effect',
    effects.processedWithoutEffect === 0,
    effects.processedWithoutEffect,
  );
  if (options.allProcessed) {
    out.check('every accepted order PROCESSED', processed === wanted.length, `${processed}/${wanted.length}`);
  }
  // The fair share: slots held by killed workers lapse with their leases (one lock duration).
  const held = await slotsLeftHeld(rig, LOCK_DURATION_MS + 5000);
  out.figure('fair-share slots still held after settling', held === undefined ? 'not measured (Redis away)' : held);
  if (held !== undefined) out.check('0 fair-share slots held (no slot leak)', held === 0, held);
  if (settlement.lost.length > 0) {
    const orders = await readOrders(rig.db);
    for (const id of settlement.lost.slice(0, 5)) {
      const row = orders.get(id);
      out.evidence.push(
        `lost ${id}: ${row ? `${row.status}, attempts ${row.attempts}, enqueuedAt ${row.enqueuedAt?.toISOString() ?? 'null'}, updatedAt ${row.updatedAt.toISOString()}` : 'not in MongoDB'}`,
      );
      out.evidence.push(...rig.fleet.grep(new RegExp(id), 6));
    }
  }
  return settlement;
}

/** Slots still held once every lease could lapse (polled up to `timeoutMs`); undefined when Redis cannot tell. */
async function slotsLeftHeld(rig: Rig, timeoutMs: number): Promise<number | undefined> {
  const redis = rig.redisClient();
  const countHeld = async () => {
    // A customer's slot set only: its pacing and burst keys have a ':' after the customer id.
    const base = fairSlotsKey(rig.prefix, '');
    const keys = (await redis.keys(fairSlotsKey(rig.prefix, '*'))).filter((k) => !k.slice(base.length).includes(':'));
    let held = 0;
    for (const key of keys) held += await redis.zcount(key, Date.now(), '+inf');
    return held;
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const held = await countHeld().catch(() => undefined);
    if (held === 0 || Date.now() > deadline) return held;
    await sleep(500);
  }
}

/** Exit codes of processes as `worker-1:0 worker-2:SIGKILL`. */
export function exitCodes(
  processes: ReadonlyArray<{ name: string; exit?: { code: number | null; signal: string | null } }>,
): string {
  return processes
    .filter((p) => p.exit)
    .map((p) => `${p.name}:${p.exit?.code ?? p.exit?.signal}`)
    .join(' ');
}

/**
 * While `load` runs, SIGKILLs a random ready worker every `killEveryMs` and starts a replacement
 * (bounded: at most one kill per period of `durationMs`, plus 5). Resolves with the number of kills
 * once the load has ended.
 */
export async function killWorkersDuringLoad(
  rig: Rig,
  ctx: ScenarioContext,
  load: Promise<unknown>,
  options: { readonly killEveryMs: number; readonly durationMs: number },
): Promise<number> {
  let loadDone = false;
  const ended = load.finally(() => {
    loadDone = true;
  });
  let kills = 0;
  const maxKills = Math.ceil(options.durationMs / options.killEveryMs) + 5;
  while (!loadDone && kills < maxKills) {
    await Promise.race([pause(options.killEveryMs, ctx.signal), ended]);
    if (loadDone) break;
    const ready = rig.fleet.live('worker').filter((p) => rig.fleet.isReady(p));
    if (ready.length === 0) continue;
    const victim = ready[Math.floor(Math.random() * ready.length)];
    await rig.fleet.kill(victim);
    kills += 1;
    ctx.progress.log(`SIGKILL ${victim.name} (kill ${kills}); starting a replacement`);
    void rig.fleet.startWorker({ wait: false });
  }
  await ended;
  ctx.progress.log('load ended; no more kills');
  return kills;
}
