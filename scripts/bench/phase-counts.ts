import { Redis } from 'ioredis';
import {
  diffCounts,
  redisCommandCounts,
  redisUsedMemory,
  sumCounts,
  type CommandCounts,
  type MongoBackend,
} from './backends.js';
import { hammer } from './load.js';
import {
  startApi,
  startBareIntake,
  startBareWorker,
  startWorker,
  stopAndSave,
  waitWorkerDone,
  type BenchContext,
  type BenchSizes,
  type Started,
} from './rig.js';
import { benchQueue } from './seed.js';
import { PROCESS_ORDER_JOB } from '#common';

/** Commands of one step, in all and per order. */
export interface StepCounts {
  readonly orders: number;
  readonly mongo: CommandCounts;
  /** Undefined when the server could not count them (see MongoBackend.commandCounts): not measured. */
  readonly mongoPerOrder: number | undefined;
  /** serverStatus opcounters delta (server-wide: includes driver heartbeats and the bench's own probes). */
  readonly opcounters: CommandCounts;
  readonly redis: CommandCounts;
  /** All Redis commands (INFO commandstats: those run inside Lua scripts too) per order. */
  readonly redisPerOrder: number;
  /** EVALSHA/EVAL calls per order: the round trips BullMQ's scripts take. */
  readonly scriptsPerOrder: number;
  /**
   * CPU time of the MongoDB server per order in µs, when the bench started it (a private stand-in);
   * undefined otherwise: not measured. A bulk write is one command but the server works per
   * statement, so this shows what the command counts cannot.
   */
  readonly mongoCpuUsPerOrder: number | undefined;
}

export interface CountFigures {
  readonly system: {
    readonly intake: StepCounts;
    readonly replay: StepCounts;
    readonly processing: StepCounts;
    readonly redisBytesPerWaitingOrder: number;
  };
  readonly bare: { readonly intake: StepCounts; readonly processing: StepCounts };
  readonly raw: {
    readonly intake: StepCounts;
    readonly processing: StepCounts;
    readonly redisBytesPerWaitingOrder: number;
  };
  readonly replayStatuses: Record<string, number>;
}

/** Connections of the intake counts: group commit batches what arrives together, so concurrency matters. */
export const COUNT_CONNECTIONS = 50;

/** Expected seconds of the phase (its weight on the progress bar). */
export const countsWeight = (s: BenchSizes) => 15 + (3 * s.countOrders) / 400;

interface Snapshot {
  readonly mongo: CommandCounts | undefined;
  readonly opcounters: CommandCounts;
  readonly redis: CommandCounts;
  readonly memory: number;
  readonly mongoCpuMs: number | undefined;
}

async function snapshot(ctx: BenchContext, mongo: MongoBackend, db: string | undefined): Promise<Snapshot> {
  const redis = ctx.counting.redis.client;
  const [mongoCounts, opcounters, redisCounts, memory, mongoCpuMs] = await Promise.all([
    db ? mongo.commandCounts(db) : Promise.resolve({}),
    mongo.opcounters(),
    redisCommandCounts(redis),
    redisUsedMemory(redis),
    mongo.cpuMs(),
  ]);
  return { mongo: mongoCounts, opcounters, redis: redisCounts, memory, mongoCpuMs };
}

function step(before: Snapshot, after: Snapshot, orders: number): StepCounts {
  const measured = before.mongo !== undefined && after.mongo !== undefined;
  const mongo = measured ? diffCounts(before.mongo!, after.mongo!) : {};
  const redis = diffCounts(before.redis, after.redis);
  return {
    orders,
    mongo,
    mongoPerOrder: measured ? sumCounts(mongo) / orders : undefined,
    opcounters: diffCounts(before.opcounters, after.opcounters),
    redis,
    redisPerOrder: sumCounts(redis) / orders,
    scriptsPerOrder: ((redis.evalsha ?? 0) + (redis.eval ?? 0)) / orders,
    mongoCpuUsPerOrder:
      before.mongoCpuMs === undefined || after.mongoCpuMs === undefined
        ? undefined
        : ((after.mongoCpuMs - before.mongoCpuMs) * 1000) / orders,
  };
}

/**
 * Command counts on the private Redis and MongoDB (nothing else talks to them): the real api and
 * worker, the bare baselines and raw BullMQ, each on its own database and prefix. Intake runs with
 * the queue paused (the orders wait, which also gives Redis memory per waiting order); then the
 * replays of the same Idempotency-Keys; then the queue is resumed and drained.
 */
export async function measureCounts(ctx: BenchContext): Promise<CountFigures> {
  const { sizes } = ctx;
  const backends = ctx.counting;
  const mongo = backends.mongo;
  const orders = sizes.countOrders;
  const phase = ctx.progress.phase(
    `command counts: ${orders} orders and ${sizes.countReplays} replays on ${backends.redis.kind} Redis and ${mongo.kind} MongoDB`,
    countsWeight(sizes),
  );
  const connection = new Redis(backends.redis.url, { maxRetriesPerRequest: null });
  const opened: Started[] = [];
  const dbs: string[] = [];
  const take = (label: string) => {
    const db = ctx.cleanup.claim(backends, label);
    dbs.push(db);
    return db;
  };
  try {
    // The system.
    const sysDb = take('count_sys');
    const api = await startApi(ctx, { name: 'count-api', backends, db: sysDb });
    opened.push(api);
    const worker = await startWorker(ctx, { name: 'count-worker', backends, db: sysDb, concurrency: 10 });
    opened.push(worker);
    const sysQueue = benchQueue(connection, sysDb);
    await sysQueue.pause();
    phase.update(0.05, 'system intake');
    const s0 = await snapshot(ctx, mongo, sysDb);
    const created = await hammer({
      baseUrl: api.url,
      connections: COUNT_CONNECTIONS,
      amount: orders,
      idempotencyKeys: `k${ctx.runId}`,
    });
    const s1 = await snapshot(ctx, mongo, sysDb);
    phase.update(0.3, 'system replays');
    const replays = await hammer({
      baseUrl: api.url,
      connections: 10,
      amount: sizes.countReplays,
      idempotencyKeys: `k${ctx.runId}`,
    });
    const s2 = await snapshot(ctx, mongo, sysDb);
    phase.update(0.4, 'system processing');
    await sysQueue.resume();
    await waitWorkerDone(worker, created.ok, 120_000);
    const s3 = await snapshot(ctx, mongo, sysDb);
    await sysQueue.close();
    await Promise.all([stopAndSave(ctx, api), stopAndSave(ctx, worker)]);

    // The bare baselines.
    phase.update(0.55, 'bare intake and processing');
    const bareDb = take('count_bare');
    const bareIntake = await startBareIntake(ctx, { name: 'count-bare-intake', backends, db: bareDb });
    opened.push(bareIntake);
    const b0 = await snapshot(ctx, mongo, bareDb);
    const bareCreated = await hammer({ baseUrl: bareIntake.url, connections: COUNT_CONNECTIONS, amount: orders });
    const b1 = await snapshot(ctx, mongo, bareDb);
    await stopAndSave(ctx, bareIntake);
    const bareQueue = benchQueue(connection, bareDb);
    await bareQueue.pause();
    const bareWorker = await startBareWorker(ctx, {
      name: 'count-bare-worker',
      backends,
      db: bareDb,
      role: 'processing',
      concurrency: 10,
    });
    opened.push(bareWorker);
    const b2 = await snapshot(ctx, mongo, bareDb);
    await bareQueue.resume();
    await bareWorker.proc.waitForDone(bareCreated.ok, 120_000);
    const b3 = await snapshot(ctx, mongo, bareDb);
    await bareQueue.close();
    await stopAndSave(ctx, bareWorker);

    // Raw BullMQ: one Queue.add per job (job id given), then a no-op worker.
    phase.update(0.75, 'raw BullMQ');
    const rawDb = take('count_raw');
    const rawQueue = benchQueue(connection, rawDb);
    await rawQueue.pause();
    const r0 = await snapshot(ctx, mongo, undefined);
    const ids = Array.from({ length: orders }, (_, i) => `raw_${ctx.runId}_${i}`);
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(
        ids.slice(i, i + 50).map((id) => rawQueue.add(PROCESS_ORDER_JOB, { orderId: id }, { jobId: id })),
      );
    }
    const r1 = await snapshot(ctx, mongo, undefined);
    const rawWorker = await startBareWorker(ctx, {
      name: 'count-raw-worker',
      backends,
      db: rawDb,
      role: 'noop',
      concurrency: 10,
    });
    opened.push(rawWorker);
    const r2 = await snapshot(ctx, mongo, undefined);
    await rawQueue.resume();
    await rawWorker.proc.waitForDone(orders, 120_000);
    const r3 = await snapshot(ctx, mongo, undefined);
    await rawQueue.close();
    await stopAndSave(ctx, rawWorker);
    phase.done();

    const replayStatuses = replays.statusCodes;
    return {
      system: {
        intake: step(s0, s1, created.ok),
        replay: step(s1, s2, replays.ok),
        processing: step(s2, s3, created.ok),
        redisBytesPerWaitingOrder: (s1.memory - s0.memory) / created.ok,
      },
      bare: { intake: step(b0, b1, bareCreated.ok), processing: step(b2, b3, bareCreated.ok) },
      raw: {
        intake: step(r0, r1, orders),
        processing: step(r2, r3, orders),
        redisBytesPerWaitingOrder: (r1.memory - r0.memory) / orders,
      },
      replayStatuses,
    };
  } finally {
    await Promise.all(opened.map((s) => stopAndSave(ctx, s)));
    connection.disconnect();
    for (const db of dbs) await ctx.cleanup.release(db);
  }
}
