import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { paced } from './load.js';
import {
  startApi,
  startBareIntake,
  startBareWorker,
  startWorker,
  stopAndSave,
  type BenchContext,
  type BenchSizes,
  type Started,
} from './rig.js';
import { benchQueue } from './seed.js';

/** One rate tried: whether the backlog stayed bounded while it ran. */
export interface FleetStep {
  readonly rate: number;
  readonly seconds: number;
  readonly accepted: number;
  readonly failed: number;
  /** Jobs waiting or active at the end of the step, and the most seen during it. */
  readonly backlogEnd: number;
  readonly backlogMax: number;
  /** The most backlog at the end that counts as bounded. */
  readonly backlogLimit: number;
  readonly bounded: boolean;
  /** Orders the fleet processed per second during the step (accepted minus the backlog's growth). */
  readonly processedPerSecond: number;
}

/** A hold: a step of `holdSeconds`, with the CPU per order of each process. */
export type FleetHold = FleetStep & {
  /** CPU per order of each process during the hold and its drain, µs (intake: per accepted order; workers: per processed order). */
  readonly cpuUsPerOrder: Record<string, number>;
};

export interface FleetSide {
  readonly variant: 'system' | 'bare';
  /** The rate whose full hold kept the backlog bounded (0 when no hold did): the figure reported. */
  readonly rate: number;
  /** The highest rate whose short step held during the search (0 when none did). */
  readonly searchRate: number;
  /** Every step held: the search ran out of steps going up, so `searchRate` (and `rate`) is a lower bound. */
  readonly lowerBound: boolean;
  readonly steps: FleetStep[];
  /** The holds run, in order: at the search's rate, then (when it did not hold) once more at `STEP_DOWN` of it. */
  readonly holds: FleetHold[];
  /** The hold whose CPU figures are reported: the one that held, else the last. */
  readonly hold: FleetHold;
}

export interface FleetFigures {
  readonly system: FleetSide;
  readonly bare: FleetSide;
  readonly holdSeconds: number;
}

/** Steps of the rate search per side (it usually stops earlier: see `CLOSE_ENOUGH`). */
const MAX_STEPS = 4;
/** The factor of a step up while no step failed yet (and down while none held, when the rate processed does not tell). */
const STEP_FACTOR = 1.4;
/** The search stops once the highest rate that held and the lowest that did not are this close. */
const CLOSE_ENOUGH = 1.1;
/** When the hold at the search's rate does not stay bounded, one more hold at (at most) this share of it. */
const STEP_DOWN = 0.8;
/** A backlog is bounded when, at the end of a hold, at most this many seconds of arrivals wait. */
const BOUNDED_SECONDS = 1;
/** Orders in processing on both workers (2 × concurrency 10): a short step's bound allows these too. */
const FLEET_SLOTS = 20;

const stepSeconds = (s: BenchSizes) => Math.max(3, Math.round(s.manyConnectionsSeconds / 12));
const holdSeconds = (s: BenchSizes) => s.manyConnectionsSeconds;
/** Expected seconds of one side without a step-down: start, a few steps (each with its clearing), the hold. */
const sideSeconds = (s: BenchSizes) => 10 + MAX_STEPS * (stepSeconds(s) + 2) + holdSeconds(s) + 3;
/**
 * Seconds the phase may take: both sides and ONE step-down hold, so that a full run stays under 10
 * minutes. A side's step-down hold runs only when it fits, with the other side still to come.
 */
const budgetSeconds = (s: BenchSizes) => 2 * sideSeconds(s) + holdSeconds(s) + 5;

/** Expected seconds of the phase (its weight on the progress bar): both sides, no step-down. */
export const fleetWeight = (s: BenchSizes) => 2 * sideSeconds(s);

/**
 * The most backlog at the end of a run of `seconds` at `rate` that counts as bounded. A hold allows
 * one second of arrivals (issue 17), nothing more. A short step at a rate a little over capacity
 * builds less than that, so a step allows the share of it that a hold's growth at the same pace would
 * reach in the step's time, plus the jobs in processing: a step holds only when the hold at its rate
 * is likely to.
 */
function backlogLimit(rate: number, seconds: number, hold: number): number {
  if (seconds >= hold) return Math.round(rate * BOUNDED_SECONDS);
  return Math.round((rate * BOUNDED_SECONDS * seconds) / hold) + FLEET_SLOTS;
}

function describe(r: FleetStep): string {
  return `${r.rate}/s for ${r.seconds} s: ${r.bounded ? 'held' : 'NOT bounded'} (backlog ${r.backlogEnd} at the end, bound ${r.backlogLimit}; ${r.failed} POSTs failed; processed ${Math.round(r.processedPerSecond)}/s)`;
}

/**
 * The whole fleet's sustainable rate (issue 17): an intake process and two workers at concurrency 10
 * (the real api and workers, or the bare intake and bare workers) on this machine's Redis and MongoDB.
 * Orders are sent at a fixed rate (evenly spaced) in short steps, the first at `startRate` (above the
 * fleet's capacity as a rule: 1.25× one worker's processing rate); a step that does not hold tells the
 * rate the fleet processed meanwhile, which is where the next step starts; once a rate held and one
 * did not, the steps bisect between them. The highest rate that held is then run for
 * `manyConnectionsSeconds` (the 60 s of the issue in a full run), measuring CPU per order of each
 * process; when that hold does not stay bounded, one more hold runs at `STEP_DOWN` of the rate. The
 * figure is the rate of the hold that stayed bounded, or none.
 */
export async function measureFleet(
  ctx: BenchContext,
  startRate: { system: number; bare: number },
  /** When the run's budget wants the phase done by (epoch ms): a step-down hold must end before it. */
  deadline = Infinity,
): Promise<FleetFigures> {
  const phase = ctx.progress.phase(
    `fleet: intake + 2 workers (concurrency 10), rate steps of ${stepSeconds(ctx.sizes)} s from the measured processing rates, then ${holdSeconds(ctx.sizes)} s at the highest that held`,
    fleetWeight(ctx.sizes),
  );
  const started = Date.now();
  const fits = (seconds: number) =>
    Date.now() + seconds * 1000 <= Math.min(started + budgetSeconds(ctx.sizes) * 1000, deadline);
  const stepDown = holdSeconds(ctx.sizes) + 5;
  const system = await measureSide(
    ctx,
    'system',
    startRate.system,
    (f, d) => phase.update(f / 2, `system: ${d}`),
    () => fits(stepDown + sideSeconds(ctx.sizes)),
  );
  const bare = await measureSide(
    ctx,
    'bare',
    startRate.bare,
    (f, d) => phase.update(0.5 + f / 2, `bare: ${d}`),
    () => fits(stepDown),
  );
  phase.done();
  return { system, bare, holdSeconds: holdSeconds(ctx.sizes) };
}

async function measureSide(
  ctx: BenchContext,
  variant: 'system' | 'bare',
  startRate: number,
  progress: (fraction: number, detail: string) => void,
  stepDownFits: () => boolean,
): Promise<FleetSide> {
  const backends = ctx.configured;
  const db = ctx.cleanup.claim(backends, `fleet_${variant}`);
  const connection = new Redis(backends.redis.url, { maxRetriesPerRequest: null });
  const queue = benchQueue(connection, db);
  const procs: Started[] = [];
  const hold = holdSeconds(ctx.sizes);
  const step = stepSeconds(ctx.sizes);
  try {
    // The intake and both workers start side by side (nothing is measured yet); each is kept for the
    // `finally` as soon as it is up, even when another fails to start. The intake is procs[0].
    const worker = (i: number) =>
      variant === 'system'
        ? startWorker(ctx, { name: `fleet-worker-${i}`, backends, db, concurrency: 10 })
        : startBareWorker(ctx, { name: `fleet-bare-worker-${i}`, backends, db, role: 'processing', concurrency: 10 });
    const starting = [
      variant === 'system'
        ? startApi(ctx, { name: 'fleet-api', backends, db })
        : startBareIntake(ctx, { name: 'fleet-bare-intake', backends, db }),
      worker(1),
      worker(2),
    ];
    const outcomes = await Promise.allSettled(starting);
    for (const o of outcomes) if (o.status === 'fulfilled') procs.push(o.value);
    const failedStart = outcomes.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failedStart) throw failedStart.reason;
    const intake = procs[0];
    const backlog = async () => {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(counts).reduce((a, b) => a + b, 0);
    };
    const run = async (rate: number, seconds: number): Promise<FleetStep> => {
      const backlogStart = await backlog();
      let backlogMax = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          backlogMax = Math.max(backlogMax, await backlog());
          await sleep(250);
        }
      })();
      const result = await paced({ baseUrl: intake.url, rate, seconds });
      sampling = false;
      await sampler;
      const backlogEnd = await backlog();
      const limit = backlogLimit(rate, seconds, hold);
      return {
        rate,
        seconds,
        accepted: result.ok,
        failed: result.failed,
        backlogEnd,
        backlogMax: Math.max(backlogMax, backlogEnd),
        backlogLimit: limit,
        bounded: result.failed === 0 && backlogEnd <= limit,
        processedPerSecond: Math.max(0, result.ok - (backlogEnd - backlogStart)) / result.seconds,
      };
    };
    // Between steps: the jobs left waiting are removed (their orders stay PENDING, which no later step
    // reads), then the ones in processing finish; the next step starts on an empty queue at once.
    const clear = async () => {
      await queue.drain(true);
      const until = Date.now() + 15_000;
      while ((await backlog()) > 0 && Date.now() < until) await sleep(100);
    };

    // The search: up by STEP_FACTOR while every step holds; after a failed step, from the rate the
    // fleet processed during it (or bisecting once a rate held), until the bracket is CLOSE_ENOUGH.
    const steps: FleetStep[] = [];
    let rate = Math.max(10, Math.round(startRate));
    let held = 0;
    let failedAt = Infinity;
    for (let i = 0; i < MAX_STEPS && rate >= 5; i += 1) {
      progress((0.6 * i) / MAX_STEPS, `${rate}/s for ${step} s`);
      const result = await run(rate, step);
      steps.push(result);
      ctx.progress.log(`  fleet ${variant}: ${describe(result)}`);
      await clear();
      if (result.bounded) held = Math.max(held, rate);
      else failedAt = Math.min(failedAt, rate);
      if (failedAt / Math.max(1, held) <= CLOSE_ENOUGH) break;
      // After a failed step, what the fleet processed during it is the best guess of its capacity,
      // taken when it lies inside the bracket, else the bracket is halved (geometrically). An
      // overloaded intake leaves the workers less CPU, so while no rate held the next step is no lower
      // than 1/STEP_FACTOR of the failed one.
      const processed = result.processedPerSecond;
      let next: number;
      if (!Number.isFinite(failedAt)) next = rate * STEP_FACTOR;
      else if (result.bounded || processed <= held * 1.02 || processed >= failedAt / 1.02)
        next = held > 0 ? Math.sqrt(held * failedAt) : failedAt / STEP_FACTOR;
      else next = held > 0 ? processed : Math.max(processed, failedAt / STEP_FACTOR);
      rate = Math.round(next);
      if (rate <= held || rate >= failedAt) break;
    }

    // The holds: at the search's rate; when it does not stay bounded, once more at STEP_DOWN of it,
    // when that fits in the phase's budget.
    const holds: FleetHold[] = [];
    const holdAt = async (holdRate: number): Promise<FleetHold> => {
      progress(0.6 + 0.4 * (holds.length / 2), `holding ${holdRate}/s for ${hold} s`);
      const cpuBefore = await Promise.all(procs.map((p) => p.proc.cpuMs()));
      const result = await run(holdRate, hold);
      // Let a bounded backlog be processed (a second or two), so the workers' CPU covers the orders
      // counted; an unbounded one is not waited for: what is still queued is not counted as processed.
      const until = Date.now() + (result.bounded ? 20_000 : 0);
      while (Date.now() < until && (await backlog()) > 0) await sleep(200);
      const cpuAfter = await Promise.all(procs.map((p) => p.proc.cpuMs()));
      const processed = Math.max(1, result.accepted - (await backlog()));
      await clear();
      const cpuUsPerOrder = Object.fromEntries(
        procs.map((p, i) => [
          p.proc.name,
          ((cpuAfter[i] - cpuBefore[i]) * 1000) / (i === 0 ? Math.max(1, result.accepted) : processed),
        ]),
      );
      ctx.progress.log(`  fleet ${variant}: hold ${describe(result)}`);
      return { ...result, cpuUsPerOrder };
    };
    // No step held: the search's next candidate (under the rate the fleet processed in its last step).
    const firstRate = held > 0 ? held : Math.max(5, rate);
    holds.push(await holdAt(firstRate));
    if (!holds[0].bounded) {
      // 0.8× the rate, or less when the fleet processed less than that over the failed hold (a short
      // step can overrate what it keeps up for a minute): the rate it did keep up with, less 5%.
      const downRate = Math.min(firstRate * STEP_DOWN, holds[0].processedPerSecond * 0.95);
      if (stepDownFits()) holds.push(await holdAt(Math.max(5, Math.round(downRate))));
      else ctx.progress.log(`  fleet ${variant}: no time left in the run's budget for a step-down hold`);
    }
    const bounded = holds.find((h) => h.bounded);
    // Every step held and so did the hold at the highest: the fleet may sustain more than that.
    const lowerBound = steps.every((x) => x.bounded) && holds[0].bounded;
    return {
      variant,
      rate: bounded?.rate ?? 0,
      searchRate: held,
      lowerBound,
      steps,
      holds,
      hold: bounded ?? holds[holds.length - 1],
    };
  } finally {
    await Promise.all(procs.map((p) => stopAndSave(ctx, p)));
    await queue.close().catch(() => undefined);
    connection.disconnect();
    await ctx.cleanup.release(db);
  }
}
