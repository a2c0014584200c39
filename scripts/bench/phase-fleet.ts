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
  readonly bounded: boolean;
}

export interface FleetSide {
  readonly variant: 'system' | 'bare';
  /** The highest rate whose step kept the backlog bounded (0 when none did). */
  readonly rate: number;
  /** Every step held: the search ran out of steps, so `rate` is a lower bound. */
  readonly lowerBound: boolean;
  readonly steps: FleetStep[];
  /** The hold at that rate for `fleetHoldSeconds`, with CPU per processed order of each process, µs. */
  readonly hold: FleetStep & { readonly cpuUsPerOrder: Record<string, number> };
}

export interface FleetFigures {
  readonly system: FleetSide;
  readonly bare: FleetSide;
  readonly holdSeconds: number;
}

const MAX_STEPS = 7;
const STEP_FACTOR = 1.25;
/** A backlog is bounded when, at the end of a run, at most this many seconds of arrivals wait. */
const BOUNDED_SECONDS = 1;

const stepSeconds = (s: BenchSizes) => Math.max(3, Math.round(s.manyConnectionsSeconds / 8));
const holdSeconds = (s: BenchSizes) => s.manyConnectionsSeconds;

export const fleetWeight = (s: BenchSizes) => 2 * (MAX_STEPS * (stepSeconds(s) + 3) + holdSeconds(s) + 20);

/**
 * The whole fleet's sustainable rate (issue 17): an intake process and two workers at concurrency 10
 * (the real api and workers, or the bare intake and bare workers) on this machine's Redis and MongoDB.
 * Orders are sent at a fixed rate (evenly spaced) in steps of `STEP_FACTOR` from `startRate` (up
 * while they hold; down until one holds when the first does not); a step holds when no POST failed
 * and the backlog (jobs waiting or active) at its end is under one second of arrivals. The highest
 * rate that held is then run again for `manyConnectionsSeconds` (the 60 s of the issue in a full
 * run), measuring CPU per processed order of each process.
 */
export async function measureFleet(
  ctx: BenchContext,
  startRate: { system: number; bare: number },
): Promise<FleetFigures> {
  const phase = ctx.progress.phase(
    `fleet: intake + 2 workers (concurrency 10), rate steps of ${stepSeconds(ctx.sizes)} s from the measured processing rates, then ${holdSeconds(ctx.sizes)} s at the highest that held`,
    fleetWeight(ctx.sizes),
  );
  const system = await measureSide(ctx, 'system', startRate.system, (f, d) => phase.update(f / 2, `system: ${d}`));
  const bare = await measureSide(ctx, 'bare', startRate.bare, (f, d) => phase.update(0.5 + f / 2, `bare: ${d}`));
  phase.done();
  return { system, bare, holdSeconds: holdSeconds(ctx.sizes) };
}

async function measureSide(
  ctx: BenchContext,
  variant: 'system' | 'bare',
  startRate: number,
  progress: (fraction: number, detail: string) => void,
): Promise<FleetSide> {
  const backends = ctx.configured;
  const db = ctx.cleanup.claim(backends, `fleet_${variant}`);
  const connection = new Redis(backends.redis.url, { maxRetriesPerRequest: null });
  const queue = benchQueue(connection, db);
  const procs: Started[] = [];
  try {
    const intake =
      variant === 'system'
        ? await startApi(ctx, { name: 'fleet-api', backends, db })
        : await startBareIntake(ctx, { name: 'fleet-bare-intake', backends, db });
    procs.push(intake);
    for (const i of [1, 2]) {
      procs.push(
        variant === 'system'
          ? await startWorker(ctx, { name: `fleet-worker-${i}`, backends, db, concurrency: 10 })
          : await startBareWorker(ctx, {
              name: `fleet-bare-worker-${i}`,
              backends,
              db,
              role: 'processing',
              concurrency: 10,
            }),
      );
    }
    const backlog = async () => {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(counts).reduce((a, b) => a + b, 0);
    };
    const run = async (rate: number, seconds: number): Promise<FleetStep> => {
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
      return {
        rate,
        seconds,
        accepted: result.ok,
        failed: result.failed,
        backlogEnd,
        backlogMax: Math.max(backlogMax, backlogEnd),
        bounded: result.failed === 0 && backlogEnd <= rate * BOUNDED_SECONDS,
      };
    };
    const drain = async () => {
      const until = Date.now() + 30_000;
      while ((await backlog()) > 0 && Date.now() < until) await sleep(200);
    };
    // Up by STEP_FACTOR while the steps hold; when the first does not, down by it until one does.
    const steps: FleetStep[] = [];
    let rate = Math.max(10, Math.round(startRate));
    let best = 0;
    let direction: 'up' | 'down' | undefined;
    for (let i = 0; i < MAX_STEPS && rate >= 5; i += 1) {
      progress(i / (MAX_STEPS + 2), `${rate}/s for ${stepSeconds(ctx.sizes)} s`);
      const step = await run(rate, stepSeconds(ctx.sizes));
      steps.push(step);
      await drain();
      direction ??= step.bounded ? 'up' : 'down';
      if (direction === 'up') {
        if (!step.bounded) break;
        best = rate;
        rate = Math.round(rate * STEP_FACTOR);
      } else {
        if (step.bounded) {
          best = rate;
          break;
        }
        rate = Math.round(rate / STEP_FACTOR);
      }
    }
    const holdRate = best > 0 ? best : Math.max(10, Math.round(startRate / 2));
    progress(MAX_STEPS / (MAX_STEPS + 2), `holding ${holdRate}/s for ${holdSeconds(ctx.sizes)} s`);
    const cpuBefore = await Promise.all(procs.map((p) => p.proc.cpuMs()));
    const hold = await run(holdRate, holdSeconds(ctx.sizes));
    await drain();
    const cpuAfter = await Promise.all(procs.map((p) => p.proc.cpuMs()));
    const cpuUsPerOrder = Object.fromEntries(
      procs.map((p, i) => [p.proc.name, ((cpuAfter[i] - cpuBefore[i]) * 1000) / Math.max(1, hold.accepted)]),
    );
    const lowerBound = direction === 'up' && steps.length === MAX_STEPS && steps.every((x) => x.bounded);
    return { variant, rate: best, lowerBound, steps, hold: { ...hold, cpuUsPerOrder } };
  } finally {
    await Promise.all(procs.map((p) => stopAndSave(ctx, p)));
    await queue.close().catch(() => undefined);
    connection.disconnect();
    await ctx.cleanup.release(db);
  }
}
