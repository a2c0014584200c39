import { Redis } from 'ioredis';
import { diffCounts, sumCounts, type CommandCounts } from './backends.js';
import { hammer } from './load.js';
import {
  startApi,
  startWorker,
  stopAndSave,
  waitQueueDrained,
  type BenchContext,
  type BenchSizes,
  type Started,
} from './rig.js';
import { benchQueue, seedHistory } from './seed.js';

/** The per-order cost of one step of a growth level. */
export interface GrowthCost {
  readonly orders: number;
  /** Orders per second (wall clock). */
  readonly ordersPerSecond: number;
  /** CPU time of the api (intake) or worker (processing) per order, µs. */
  readonly processCpuUs: number;
  /** CPU time of the database server per order, µs (when the bench started it). */
  readonly dbCpuUs: number | undefined;
  /** Both, µs: the cost the flatness target is judged on (CPU time is much less noisy than wall time here). */
  readonly cpuUs: number;
  /** Undefined when the server could not count them: not measured. */
  readonly mongoPerOrder: number | undefined;
}

export interface GrowthLevel {
  /** Orders stored before the step. */
  readonly stored: number;
  /** Of those, FAILED with a dead job in BullMQ's failed set. */
  readonly dead: number;
  readonly intake: GrowthCost;
  readonly processing: GrowthCost;
}

/** Orders taken in and drained by each fresh api and worker before the measurement (JIT, pools). */
const warmupOrders = (s: BenchSizes) => Math.max(500, Math.round(s.growthOrders * 0.5));

/** Expected seconds of the phase (its progress weight, and what the run's budget plans for), on a slow host. */
export const growthWeight = (s: BenchSizes) =>
  s.growthLevels.length * (4 + (2 * (s.growthOrders + warmupOrders(s))) / 350) +
  s.growthLevels[s.growthLevels.length - 1] / 20_000;

/**
 * Per-order cost with 1k, 10k, 50k orders already stored (a share FAILED, their jobs in the DLQ),
 * on the private backends: at each level the history is bulk-inserted, a fresh api and worker are
 * started and warmed up, then `growthOrders` orders are taken in (queue paused) and drained.
 */
export async function measureGrowth(ctx: BenchContext): Promise<GrowthLevel[]> {
  const { sizes } = ctx;
  const backends = ctx.counting;
  const levels = sizes.growthLevels;
  const phase = ctx.progress.phase(
    `growth: per-order cost with ${levels.map((l) => `${l / 1000}k`).join(', ')} orders stored (${sizes.failedShare * 100}% dead letters)`,
    growthWeight(sizes),
  );
  const db = ctx.cleanup.claim(backends, 'growth');
  const connection = new Redis(backends.redis.url, { maxRetriesPerRequest: null });
  const queue = benchQueue(connection, db);
  const mongoDb = backends.mongo.client.db(db);
  const out: GrowthLevel[] = [];
  let stored = 0;
  let dead = 0;
  let api: Started | undefined;
  let worker: Started | undefined;
  try {
    for (const [index, level] of levels.entries()) {
      const at = (f: number, detail: string) =>
        phase.update((index + f) / levels.length, `${level / 1000}k: ${detail}`);
      at(0, `seeding ${level - stored} orders`);
      // History with no worker running: the dead jobs are made by a throwaway worker on this queue.
      const seeded = await seedHistory({
        db: mongoDb,
        connection,
        prefix: db,
        count: level - stored,
        failedShare: sizes.failedShare,
        onProgress: (n) => at((0.3 * n) / (level - stored), `seeding ${n}/${level - stored}`),
      });
      dead += seeded.failed;
      // The system's own orders from the earlier levels count as stored too.
      stored = await mongoDb.collection('orders').countDocuments();
      at(0.3, 'starting api and worker');
      api = await startApi(ctx, { name: `growth-api-${level}`, backends, db });
      worker = await startWorker(ctx, { name: `growth-worker-${level}`, backends, db, concurrency: 10 });
      at(0.35, 'warming up');
      const warm = await hammer({ baseUrl: api.url, connections: 50, amount: warmupOrders(sizes) });
      await waitQueueDrained(backends.redis.client, db, { total: warm.ok, timeoutMs: 120_000 });

      at(0.4, 'intake');
      await queue.pause();
      const counts0 = await backends.mongo.commandCounts(db);
      const api0 = await api.proc.cpuMs();
      const dbCpu0 = await backends.mongo.cpuMs();
      const intake = await hammer({ baseUrl: api.url, connections: 50, amount: sizes.growthOrders });
      const api1 = await api.proc.cpuMs();
      const dbCpu1 = await backends.mongo.cpuMs();
      const counts1 = await backends.mongo.commandCounts(db);

      at(0.7, 'processing');
      const worker0 = await worker.proc.cpuMs();
      const t0 = Date.now();
      await queue.resume();
      await waitQueueDrained(backends.redis.client, db, { total: intake.ok, timeoutMs: 120_000 });
      // Read the counters first: the bench's own query below must not count as the worker's.
      const worker1 = await worker.proc.cpuMs();
      const dbCpu2 = await backends.mongo.cpuMs();
      const counts2 = await backends.mongo.commandCounts(db);
      const last = await mongoDb
        .collection<{ _id: string; processedAt: Date | null }>('orders')
        .find({ status: 'PROCESSED' }, { projection: { processedAt: 1 } })
        .sort({ processedAt: -1 })
        .limit(1)
        .toArray();
      const t1 = last[0]?.processedAt?.getTime() ?? Date.now();

      const commands = (a: CommandCounts | undefined, b: CommandCounts | undefined) =>
        a !== undefined && b !== undefined ? sumCounts(diffCounts(a, b)) : undefined;
      const dbUs = (a: number | undefined, b: number | undefined, n: number) =>
        a !== undefined && b !== undefined ? ((b - a) * 1000) / n : undefined;
      const cost = (
        orders: number,
        seconds: number,
        processMs: number,
        dbMs: number | undefined,
        mongo: number | undefined,
      ): GrowthCost => {
        const processCpuUs = (processMs * 1000) / orders;
        return {
          orders,
          ordersPerSecond: orders / seconds,
          processCpuUs,
          dbCpuUs: dbMs,
          cpuUs: processCpuUs + (dbMs ?? 0),
          mongoPerOrder: mongo === undefined ? undefined : mongo / orders,
        };
      };
      out.push({
        stored,
        dead,
        intake: cost(
          intake.ok,
          intake.seconds,
          api1 - api0,
          dbUs(dbCpu0, dbCpu1, intake.ok),
          commands(counts0, counts1),
        ),
        processing: cost(
          intake.ok,
          Math.max(0.001, (t1 - t0) / 1000),
          worker1 - worker0,
          dbUs(dbCpu1, dbCpu2, intake.ok),
          commands(counts1, counts2),
        ),
      });
      await Promise.all([stopAndSave(ctx, api), stopAndSave(ctx, worker)]);
      api = undefined;
      worker = undefined;
      at(1, 'done');
    }
    phase.done();
    return out;
  } finally {
    await Promise.all([stopAndSave(ctx, api), stopAndSave(ctx, worker)]);
    await queue.close().catch(() => undefined);
    connection.disconnect();
    await ctx.cleanup.release(db);
  }
}
