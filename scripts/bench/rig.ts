import { writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { ORDERS_QUEUE, RECONCILE_QUEUE } from '#common';
import { freePort } from '../lib/embedded-services.js';
import { deletePrefix, pollUntil, type MongoBackend, type RedisBackend } from './backends.js';
import { spawnNode, type BenchProcess } from './processes.js';
import type { Progress } from './progress.js';
import { seedInventory } from './seed.js';

/** Sizes of one run: the default run, or `--quick`. */
export interface BenchSizes {
  /** Seconds of warm-up load on each intake process before it is measured. */
  readonly warmupSeconds: number;
  /** Seconds of each measured intake round (autocannon, 50 connections). */
  readonly intakeSeconds: number;
  /** Rounds per intake variant, alternating bare/system (ABBA) so drift hits both alike. */
  readonly intakeRounds: number;
  /** Orders drained per processing run. */
  readonly processingOrders: number;
  readonly concurrencies: readonly number[];
  /** Requests per second of the end-to-end run (capped at a third of the measured capacity). */
  readonly e2eRate: number;
  readonly e2eSeconds: number;
  /** Orders (and replays) of the command-count phase. */
  readonly countOrders: number;
  readonly countReplays: number;
  /** Orders already stored at each growth step. */
  readonly growthLevels: readonly number[];
  /**
   * Orders taken in and processed at each growth step: enough that one pause (a GC of the database
   * server's larger heap, another process's burst) moves the per-order cost by a few per cent, not ten.
   */
  readonly growthOrders: number;
  /** Share of the stored orders that are FAILED (dead letters). */
  readonly failedShare: number;
  /** Concurrent keep-alive connections of the connections phase, and its seconds. */
  readonly manyConnections: number;
  readonly manyConnectionsSeconds: number;
  /** The fairness phase: the flooding customer's orders, then other customers, each sending `fairPerOther`. */
  readonly fairFlood: number;
  readonly fairOthers: number;
  readonly fairPerOther: number;
  /**
   * Seconds the whole run should take (from start, build not included): the fleet phase's step-down
   * hold runs only when the phases after it still fit in what is left, the count-based ones shrunk to
   * half (see {@link leastSecondsLeft}), and those shrink when they would not fit (see {@link fitToBudget}).
   */
  readonly runBudgetSeconds: number;
}

/** The least a count-based phase is shrunk to when the run is late (half its planned size). */
const MIN_SCALE = 0.5;

/**
 * The fewest seconds the phases still to run can take: the timed ones (`fixedSeconds`) in full, the
 * count-based ones (`countedSeconds`, at planned sizes and this host's slowness) shrunk to half, the
 * most {@link fitToBudget} shrinks them. The fleet's step-down hold runs when it fits before that: the
 * fleet's sustainable rate is a target, while half the orders still measure the count-based figures.
 */
export function leastSecondsLeft(time: { readonly fixedSeconds: number; readonly countedSeconds: number }): number {
  return time.fixedSeconds + MIN_SCALE * time.countedSeconds;
}

/**
 * The sizes a count-based phase after the fleet (counts, growth, webhooks, fairness) runs with, so a
 * run on a slow host still ends within `runBudgetSeconds`: `leftSeconds` is what the budget still
 * has, `fixedSeconds` the expected seconds of the timed phases still to run (the connections phase's
 * 60 s do not shrink), `countedSeconds` those of the count-based phases still to run (this one
 * included) at the planned sizes, already multiplied by how much slower than planned this host ran
 * the processing phase. The orders of those phases are scaled by what fits, between half and all.
 */
export function fitToBudget(
  sizes: BenchSizes,
  time: { readonly leftSeconds: number; readonly fixedSeconds: number; readonly countedSeconds: number },
): { readonly scale: number; readonly sizes: BenchSizes } {
  const room = time.leftSeconds - time.fixedSeconds;
  const scale = time.countedSeconds > 0 ? Math.min(1, Math.max(MIN_SCALE, room / time.countedSeconds)) : 1;
  if (scale >= 1) return { scale: 1, sizes };
  const n = (v: number) => Math.max(1, Math.round(v * scale));
  return {
    scale,
    sizes: {
      ...sizes,
      countOrders: n(sizes.countOrders),
      countReplays: n(sizes.countReplays),
      processingOrders: n(sizes.processingOrders),
      growthOrders: n(sizes.growthOrders),
      fairFlood: n(sizes.fairFlood),
    },
  };
}

// Sized so that the whole run takes under 10 minutes on 2 shared cores (about 9 with the MongoDB
// stand-in on a busy machine): each phase's own budget is in scripts/bench/README.md.
export const DEFAULT_SIZES: BenchSizes = {
  warmupSeconds: 2,
  intakeSeconds: 4,
  intakeRounds: 2,
  processingOrders: 2000,
  concurrencies: [10, 50],
  e2eRate: 300,
  e2eSeconds: 6,
  countOrders: 1000,
  countReplays: 300,
  growthLevels: [1000, 10_000, 50_000],
  growthOrders: 2500,
  failedShare: 0.1,
  manyConnections: 5000,
  manyConnectionsSeconds: 60,
  fairFlood: 6000,
  fairOthers: 50,
  fairPerOther: 10,
  runBudgetSeconds: 540,
};

export const QUICK_SIZES: BenchSizes = {
  warmupSeconds: 1,
  intakeSeconds: 4,
  intakeRounds: 1,
  processingOrders: 1500,
  concurrencies: [10, 50],
  e2eRate: 200,
  e2eSeconds: 4,
  countOrders: 500,
  countReplays: 200,
  growthLevels: [1000, 10_000],
  growthOrders: 800,
  failedShare: 0.1,
  manyConnections: 5000,
  manyConnectionsSeconds: 15,
  fairFlood: 2000,
  fairOthers: 50,
  fairPerOther: 10,
  runBudgetSeconds: 270,
};

/** Settings every real process of the bench gets (printed in the report). */
export const SYSTEM_ENV = Object.freeze({
  NODE_ENV: 'production',
  API_AUTH: 'off',
  LOG_LEVEL: 'warn',
  RATE_LIMIT_PER_MINUTE: '0',
  PROCESSING_DELAY_MS: '0',
  FAILURE_RATE: '0',
  // Reconciler ticks cost a few queries per tick, not per order; kept out of the windows measured.
  RECONCILE_INTERVAL_MS: '600000',
});

export interface BackendPair {
  readonly redis: RedisBackend;
  readonly mongo: MongoBackend;
}

/** A stretch of time in which a process handled `orders` orders under measurement. */
export interface MeasureWindow {
  readonly from: number;
  readonly to: number;
  readonly orders: number;
}

/** Per process (by name): when it spawned and its measured windows; profiles are cut to these. */
export type WindowLog = Map<string, { spawnedAt: number; windows: MeasureWindow[] }>;

export function recordWindow(ctx: BenchContext, proc: BenchProcess, window: MeasureWindow): void {
  const entry = ctx.windows.get(proc.name) ?? { spawnedAt: proc.spawnedAt, windows: [] };
  entry.windows.push(window);
  ctx.windows.set(proc.name, entry);
}

/** Everything a phase needs. */
export interface BenchContext {
  readonly runId: string;
  readonly sizes: BenchSizes;
  /** REDIS_URL / MONGO_URL: throughput and latency phases. */
  readonly configured: BackendPair;
  /** Private servers (or the configured ones when none could be started): counts and growth. */
  readonly counting: BackendPair;
  readonly outDir: string;
  /** Set with --profile: where the processes write their .cpuprofile files. */
  readonly profileDir: string | undefined;
  readonly progress: Progress;
  readonly cleanup: Cleanup;
  readonly windows: WindowLog;
}

/**
 * The databases and queue prefixes the run made; each is removed when its phase is done, and
 * whatever is left when the run ends or fails.
 */
export class Cleanup {
  private readonly names = new Map<string, BackendPair>();

  constructor(private readonly runId: string) {}

  /** A database name and queue prefix of this run for `label`, removed by {@link release}. */
  claim(backends: BackendPair, label: string): string {
    const name = `bench_${this.runId}_${label}`.replace(/[^A-Za-z0-9_-]/g, '_');
    this.names.set(name, backends);
    return name;
  }

  async release(name: string): Promise<void> {
    const backends = this.names.get(name);
    if (!backends) return;
    this.names.delete(name);
    await Promise.allSettled([
      backends.mongo.client.db(name).dropDatabase(),
      deletePrefix(backends.redis.client, name),
    ]);
  }

  async releaseAll(): Promise<void> {
    for (const name of [...this.names.keys()]) await this.release(name);
  }
}

/** GET → status and body; rejects on connection errors. */
export function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.once('error', reject);
  });
}

function profileOptions(ctx: BenchContext, label: string): string[] | undefined {
  return ctx.profileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`, `--cpu-prof-name=${label}.cpuprofile`]
    : undefined;
}

/** Writes a process's output lines to `<outDir>/logs/<name>.log` (they say why something failed). */
export async function saveLog(ctx: BenchContext, proc: BenchProcess): Promise<void> {
  await writeFile(join(ctx.outDir, 'logs', `${proc.name}.log`), proc.lines.join('\n') + '\n').catch(() => undefined);
}

export interface Started {
  readonly proc: BenchProcess;
  /** http://127.0.0.1:PORT of an intake process; the metrics URL of a real worker. */
  readonly url: string;
}

/**
 * Spawns `script` (under `--cpu-prof` when profiling) and waits for its IPC `ready`, then for
 * `settled` if given; on any failure the process is stopped, its log kept, and the error rethrown.
 */
async function spawnReady(
  ctx: BenchContext,
  spec: {
    readonly name: string;
    readonly script: string;
    readonly env: Record<string, string>;
    readonly readyMs: number;
  },
  settled?: () => Promise<void>,
): Promise<BenchProcess> {
  const proc = spawnNode({
    name: spec.name,
    script: spec.script,
    env: spec.env,
    nodeArgs: profileOptions(ctx, spec.name),
  });
  try {
    await proc.ready(spec.readyMs);
    await settled?.();
  } catch (err) {
    await proc.stop('SIGTERM', 2000);
    await saveLog(ctx, proc);
    throw err;
  }
  return proc;
}

/** The real api (`dist/api/main.js`), ready: listening, MongoDB connected, indexes in place. */
export async function startApi(
  ctx: BenchContext,
  options: {
    readonly name: string;
    readonly backends: BackendPair;
    readonly db: string;
    /** Overrides of the bench's settings (e.g. LOG_LEVEL). */
    readonly env?: Record<string, string>;
  },
): Promise<Started> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    ...SYSTEM_ENV,
    MONGO_URL: options.backends.mongo.url(options.db),
    REDIS_URL: options.backends.redis.url,
    QUEUE_PREFIX: options.db,
    API_PORT: String(port),
    ...options.env,
  };
  const proc = await spawnReady(
    ctx,
    { name: options.name, script: 'dist/api/main.js', env, readyMs: 60_000 },
    async () => {
      await pollUntil(async () => (await httpGet(`${url}/health/ready`).catch(() => ({ status: 0 }))).status === 200, {
        timeoutMs: 60_000,
        message: () => `${options.name}: /health/ready did not answer 200 within 60 s (is MongoDB up?)`,
      });
      // The api creates the indexes right after connecting; wait for them so they are not built under load.
      const orders = options.backends.mongo.client.db(options.db).collection('orders');
      await pollUntil(async () => (await orders.indexes().catch(() => [])).length >= 7, {
        timeoutMs: 30_000,
        message: () => `${options.name}: the order indexes were not created within 30 s`,
      });
    },
  );
  return { proc, url };
}

/**
 * The real worker (`dist/worker/main.js`), ready (it said so over IPC, as it does to pm2), with the
 * bench's SKUs tracked on its database.
 */
export async function startWorker(
  ctx: BenchContext,
  options: {
    readonly name: string;
    readonly backends: BackendPair;
    readonly db: string;
    readonly concurrency: number;
    /** Overrides of the worker's environment (the webhooks phase). */
    readonly env?: Readonly<Record<string, string>>;
  },
): Promise<Started> {
  await seedInventory(options.backends.mongo.client.db(options.db));
  const port = await freePort();
  const env = {
    ...SYSTEM_ENV,
    MONGO_URL: options.backends.mongo.url(options.db),
    REDIS_URL: options.backends.redis.url,
    QUEUE_PREFIX: options.db,
    WORKER_CONCURRENCY: String(options.concurrency),
    WORKER_METRICS_PORT: String(port),
    NODE_APP_INSTANCE: '0',
    ...options.env,
  };
  const proc = await spawnReady(
    ctx,
    { name: options.name, script: 'dist/worker/main.js', env, readyMs: 60_000 },
    async () => {
      // The reconciler's schedule runs its first tick at once (BullMQ's `every`); let it finish so its
      // queries (a few per tick, not per order) stay out of the windows measured.
      const redis = options.backends.redis.client;
      const key = (state: string) => `${options.db}:${RECONCILE_QUEUE}:${state}`;
      await pollUntil(async () => (await redis.zcard(key('completed'))) + (await redis.zcard(key('failed'))) > 0, {
        timeoutMs: 30_000,
        message: () => `${options.name}: the reconciler's first tick did not finish within 30 s`,
      });
    },
  );
  return { proc, url: `http://127.0.0.1:${port}/metrics` };
}

/** Jobs a real worker has finished (completed or no-op), and failed, from its /metrics. */
export async function workerJobs(metricsUrl: string): Promise<{ done: number; failed: number }> {
  const { body } = await httpGet(metricsUrl);
  let done = 0;
  let failed = 0;
  for (const match of body.matchAll(/^worker_jobs_total\{([^}]*)\} (\d+)/gm)) {
    const outcome = /outcome="([^"]+)"/.exec(match[1])?.[1];
    if (outcome === 'completed' || outcome === 'noop_terminal') done += Number(match[2]);
    else failed += Number(match[2]);
  }
  return { done, failed };
}

/** Waits until a real worker has finished `count` jobs; `onProgress` sees the count as it grows. */
export async function waitWorkerDone(
  worker: Started,
  count: number,
  timeoutMs: number,
  onProgress?: (done: number) => void,
): Promise<void> {
  let last = { done: 0, failed: 0 };
  await pollUntil(
    async () => {
      last = await workerJobs(worker.url).catch(() => last);
      onProgress?.(last.done);
      return last.done >= count;
    },
    {
      timeoutMs,
      everyMs: 200,
      message: () =>
        `${worker.proc.name}: ${last.done}/${count} jobs done (${last.failed} failed) within ${timeoutMs / 1000} s; ` +
        `see ${worker.proc.name}.log in the results folder`,
    },
  );
}

/**
 * Waits until the `orders` queue under `prefix` holds no job that is waiting, active, paused, delayed
 * or prioritized: every job added so far has finished. Polls Redis (five O(1) reads every 100 ms),
 * so the worker being measured is not disturbed; `onProgress` sees `total` minus the jobs left.
 */
export async function waitQueueDrained(
  redis: Redis,
  prefix: string,
  options: { readonly total: number; readonly timeoutMs: number; readonly onProgress?: (done: number) => void },
): Promise<void> {
  const key = (state: string) => `${prefix}:${ORDERS_QUEUE}:${state}`;
  let left = options.total;
  await pollUntil(
    async () => {
      const replies = (await redis
        .pipeline()
        .llen(key('wait'))
        .llen(key('active'))
        .llen(key('paused'))
        .zcard(key('delayed'))
        .zcard(key('prioritized'))
        .exec()) as [Error | null, number][];
      left = replies.reduce((sum, [, n]) => sum + Number(n ?? 0), 0);
      options.onProgress?.(options.total - left);
      return left === 0;
    },
    {
      timeoutMs: options.timeoutMs,
      everyMs: 100,
      message: () => `${left} of ${options.total} jobs still queued after ${options.timeoutMs / 1000} s`,
    },
  );
}

/** The bare intake baseline as a child process, ready. */
export async function startBareIntake(
  ctx: BenchContext,
  options: { readonly name: string; readonly backends: BackendPair; readonly db: string },
): Promise<Started> {
  const port = await freePort();
  const proc = await spawnReady(ctx, {
    name: options.name,
    script: 'dist/scripts/bench/bare-intake.js',
    env: {
      MONGO_URL: options.backends.mongo.url(options.db),
      REDIS_URL: options.backends.redis.url,
      QUEUE_PREFIX: options.db,
      API_PORT: String(port),
    },
    readyMs: 30_000,
  });
  return { proc, url: `http://127.0.0.1:${port}` };
}

/**
 * A bare worker (`processing`: the saga's MongoDB commands and provider wait, on the bench's tracked
 * stock; `noop`: raw BullMQ) as a child process, ready.
 */
export async function startBareWorker(
  ctx: BenchContext,
  options: {
    readonly name: string;
    readonly backends: BackendPair;
    readonly db: string;
    readonly role: 'processing' | 'noop';
    readonly concurrency: number;
  },
): Promise<Started> {
  if (options.role === 'processing') await seedInventory(options.backends.mongo.client.db(options.db));
  const proc = await spawnReady(ctx, {
    name: options.name,
    script: 'dist/scripts/bench/bare-worker.js',
    env: {
      ...(options.role === 'processing'
        ? { MONGO_URL: options.backends.mongo.url(options.db), PROCESSING_DELAY_MS: SYSTEM_ENV.PROCESSING_DELAY_MS }
        : {}),
      REDIS_URL: options.backends.redis.url,
      QUEUE_PREFIX: options.db,
      WORKER_CONCURRENCY: String(options.concurrency),
      BENCH_ROLE: options.role,
    },
    readyMs: 30_000,
  });
  return { proc, url: '' };
}

/** Stops a process and keeps its output in the results folder. */
export async function stopAndSave(ctx: BenchContext, started: Started | undefined): Promise<void> {
  if (!started) return;
  await started.proc.stop();
  await saveLog(ctx, started.proc);
}
