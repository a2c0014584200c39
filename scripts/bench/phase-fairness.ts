import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { PUBLIC_SCOPE, createBurstMeter, createOrdersQueue, newOrder, orderJob } from '#common';
import { pollUntil, redisCommandCounts, diffCounts, sumCounts, type CommandCounts } from './backends.js';
import { type BenchContext, type Started, httpGet, startApi, startWorker, stopAndSave } from './rig.js';
import { ORDER_BODY, orderId } from './seed.js';
import { percentile, ratio } from './stats.js';

/**
 * The fair share (README, "Fairness"): one customer floods the queue, then `others` customers send
 * `perOther` orders each through the api. The others' time from POST to PROCESSED (p99), with the
 * fair share on and off, against the same orders with no flood; the flooding customer's progress
 * meanwhile; Redis commands per processed order in that window.
 */

const WORKERS = 2;
const CONCURRENCY = 10;
/** The system's default simulated work per order: without it the per-customer limit bounds nothing. */
const PROCESSING_DELAY_MS = '50';
const FLOOD_CUSTOMER = 'flood';
const SEED_BATCH = 1000;

export interface FairRun {
  readonly label: string;
  readonly fairShare: 'customerId' | 'off';
  readonly flood: number;
  readonly others: number;
  /** The others' time from creation to PROCESSED, ms. */
  readonly othersP50Ms: number;
  readonly othersP99Ms: number;
  /** The flooding customer's orders PROCESSED per second while the others' orders were in. */
  readonly floodPerSecond: number;
  /** Its share of all orders processed in that window. */
  readonly floodShare: number;
  readonly windowSeconds: number;
  /** All Redis commands (those inside scripts too) and EVALSHA calls per order processed in the window. */
  readonly redisPerOrder: number;
  readonly scriptsPerOrder: number;
  /** Jobs deferred by the fair share (moved to delayed, no attempt spent) per order processed. */
  readonly deferralsPerOrder: number;
  readonly redis: CommandCounts;
}

export interface FairnessFigures {
  readonly noFlood: FairRun;
  readonly fair: FairRun;
  readonly off: FairRun;
  readonly maxActivePerCustomer: number;
  readonly fleetConcurrency: number;
}

/** Expected seconds of the phase (its progress weight, and what the run's budget plans for), on a slow host. */
export const fairnessWeight = (s: { fairFlood: number }) => 30 + s.fairFlood / 150;

/** Sum of a counter over the workers' /metrics. */
async function workerCounter(workers: readonly Started[], name: string): Promise<number> {
  let total = 0;
  for (const w of workers) {
    const { body } = await httpGet(w.url).catch(() => ({ body: '' }));
    for (const m of body.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'gm'))) total += Number(m[1]);
  }
  return total;
}

async function run(
  ctx: BenchContext,
  spec: { label: string; fairShare: 'customerId' | 'off'; flood: number },
  update: (fraction: number, detail: string) => void,
): Promise<FairRun> {
  const backends = ctx.counting;
  const db = ctx.cleanup.claim(backends, `fair_${spec.label}`);
  const env = { PROCESSING_DELAY_MS, FAIR_SHARE_KEY: spec.fairShare };
  const opened: Started[] = [];
  const connection = new Redis(backends.redis.url, { maxRetriesPerRequest: null });
  const queue = createOrdersQueue(connection, { prefix: db, jobAttempts: 5, jobBackoffMs: 1000 });
  const orders = backends.mongo.client.db(db).collection<{ _id: string }>('orders');
  const meter = spec.fairShare === 'off' ? undefined : createBurstMeter(connection, db);
  const { others: otherCount, perOther } = { others: ctx.sizes.fairOthers, perOther: ctx.sizes.fairPerOther };
  const othersTotal = otherCount * perOther;
  try {
    update(0, `${spec.label}: starting the api and ${WORKERS} workers`);
    const api = await startApi(ctx, { name: `fair-${spec.label}-api`, backends, db, env });
    opened.push(api);
    const workers: Started[] = [];
    for (let i = 0; i < WORKERS; i += 1) {
      const w = await startWorker(ctx, {
        name: `fair-${spec.label}-w${i}`,
        backends,
        db,
        concurrency: CONCURRENCY,
        env,
      });
      opened.push(w);
      workers.push(w);
    }

    // The flood, as the api leaves its orders (stored, enqueued), while the workers already run.
    for (let done = 0; done < spec.flood; done += SEED_BATCH) {
      const at = new Date();
      const batch = Array.from({ length: Math.min(SEED_BATCH, spec.flood - done) }, () =>
        newOrder({
          id: orderId(),
          clientId: PUBLIC_SCOPE,
          input: { ...ORDER_BODY, customerId: FLOOD_CUSTOMER },
          fingerprint: null,
          correlationId: 'bench-flood',
          at,
        }),
      );
      await orders.insertMany(
        batch.map(({ id, ...rest }) => ({ _id: id, ...rest, enqueuedAt: at })),
        { ordered: false },
      );
      // Placed as the api places them: past the burst limit, behind other customers (fair share on).
      const over = meter ? await meter.overLimit(batch.map((o) => o.customerId)) : [];
      await queue.addBulk(batch.map((o, i) => orderJob(o, { now: at, overBurst: over[i] })));
      update(0.1 * (done / Math.max(1, spec.flood)), `${spec.label}: flood ${done}/${spec.flood}`);
    }

    const before = await redisCommandCounts(backends.redis.client);
    const deferralsBefore = await workerCounter(workers, 'worker_fair_deferrals_total');
    const processedCount = (filter: Record<string, unknown>) =>
      orders.countDocuments({ ...filter, status: 'PROCESSED' } as never);
    const floodBefore = await processedCount({ customerId: FLOOD_CUSTOMER });
    const allBefore = await processedCount({});
    const t0 = Date.now();

    // The others: `perOther` orders each through POST /orders, 10 in flight. A 503 (the stand-in
    // MongoDB behind on a loaded machine) is retried under the same Idempotency-Key: one order each.
    const bodies = Array.from({ length: othersTotal }, (_, i) =>
      JSON.stringify({ ...ORDER_BODY, customerId: `other-${i % otherCount}` }),
    );
    let next = 0;
    const lane = async () => {
      while (next < bodies.length) {
        const n = next++;
        for (let attempt = 1; ; attempt += 1) {
          const res = await fetch(`${api.url}/orders`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': `${db}-${n}` },
            body: bodies[n],
            signal: AbortSignal.timeout(30_000),
          });
          const text = await res.text();
          if (res.status === 201 || res.status === 200) break;
          if (res.status !== 503 || attempt >= 20) throw new Error(`POST /orders answered ${res.status}: ${text}`);
          await sleep(250 * attempt);
        }
      }
    };
    await Promise.all(Array.from({ length: 10 }, lane));

    const othersFilter = { customerId: { $ne: FLOOD_CUSTOMER } };
    const timeoutMs = 120_000 + spec.flood * 30;
    let othersDone = 0;
    await pollUntil(
      async () => {
        othersDone = await processedCount(othersFilter);
        update(0.1 + 0.9 * (othersDone / othersTotal), `${spec.label}: others ${othersDone}/${othersTotal} PROCESSED`);
        return othersDone >= othersTotal;
      },
      {
        timeoutMs,
        everyMs: 500,
        message: () =>
          `${spec.label}: ${othersDone}/${othersTotal} of the others' orders PROCESSED within ${timeoutMs / 1000} s`,
      },
    );
    const windowMs = Date.now() - t0;
    const after = await redisCommandCounts(backends.redis.client);
    const deferrals = (await workerCounter(workers, 'worker_fair_deferrals_total')) - deferralsBefore;
    const floodDone = (await processedCount({ customerId: FLOOD_CUSTOMER })) - floodBefore;
    const processed = (await processedCount({})) - allBefore;

    const docs = await orders.find(othersFilter as never, { projection: { createdAt: 1, processedAt: 1 } }).toArray();
    const latencies = docs.map((d) => {
      const doc = d as unknown as { createdAt: Date; processedAt: Date };
      return doc.processedAt.getTime() - doc.createdAt.getTime();
    });
    const redis = diffCounts(before, after);
    return {
      label: spec.label,
      fairShare: spec.fairShare,
      flood: spec.flood,
      others: othersTotal,
      othersP50Ms: percentile(latencies, 50),
      othersP99Ms: percentile(latencies, 99),
      floodPerSecond: floodDone / (windowMs / 1000),
      floodShare: ratio(floodDone, processed),
      windowSeconds: windowMs / 1000,
      redisPerOrder: sumCounts(redis) / processed,
      scriptsPerOrder: ((redis.evalsha ?? 0) + (redis.eval ?? 0)) / processed,
      deferralsPerOrder: deferrals / processed,
      redis,
    };
  } finally {
    for (const started of opened.reverse()) await stopAndSave(ctx, started);
    await queue.close().catch(() => undefined);
    connection.disconnect();
    await ctx.cleanup.release(db);
  }
}

/** Three runs: no flood (the baseline), a flood with the fair share on, the same flood with it off. */
export async function measureFairness(ctx: BenchContext): Promise<FairnessFigures> {
  const { fairFlood, fairOthers, fairPerOther } = ctx.sizes;
  const phase = ctx.progress.phase(
    `fairness: one customer floods ${fairFlood} orders, then ${fairOthers} customers send ${fairPerOther} each; ${WORKERS} workers × ${CONCURRENCY}`,
    fairnessWeight(ctx.sizes),
  );
  const part = (i: number) => (f: number, d: string) => phase.update((i + f) / 3, d);
  const noFlood = await run(ctx, { label: 'noflood', fairShare: 'customerId', flood: 0 }, part(0));
  const fair = await run(ctx, { label: 'fair', fairShare: 'customerId', flood: fairFlood }, part(1));
  const off = await run(ctx, { label: 'off', fairShare: 'off', flood: fairFlood }, part(2));
  phase.done();
  const fleetConcurrency = WORKERS * CONCURRENCY;
  return { noFlood, fair, off, fleetConcurrency, maxActivePerCustomer: Math.max(1, Math.floor(fleetConcurrency / 4)) };
}
