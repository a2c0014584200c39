import { createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { hammer, oneAtATime, paced, type HammerResult } from './load.js';
import {
  startApi,
  startBareIntake,
  startBareWorker,
  startWorker,
  stopAndSave,
  waitQueueDrained,
  type BackendPair,
  type BenchContext,
  type BenchSizes,
  type Started,
  recordWindow,
} from './rig.js';
import { benchQueue, seedWaiting } from './seed.js';
import { pollUntil } from './backends.js';
import { mean, percentile } from './stats.js';

export type Variant = 'system' | 'bare' | 'raw';

export interface IntakeFigures {
  readonly variant: IntakeVariant;
  readonly rounds: HammerResult[];
  /** Mean over the rounds. */
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Process CPU time per accepted order over the measured rounds, in µs. */
  readonly cpuUsPerOrder: number;
  readonly peakRssBytes: number;
  readonly non2xx: number;
  readonly errors: number;
  /** One connection, one request at a time (no concurrency to batch): latency in ms. Absent when not measured. */
  readonly idle?: { readonly p50Ms: number; readonly p99Ms: number; readonly requests: number };
}

export interface ProcessingFigures {
  readonly variant: Variant;
  /** A system worker run with other settings (the ablation: `unbatched` = WORKER_BATCH_WRITES=off). */
  readonly label?: string;
  readonly concurrency: number;
  readonly orders: number;
  readonly seconds: number;
  readonly ordersPerSecond: number;
  readonly cpuUsPerOrder: number;
  readonly peakRssBytes: number;
}

export interface E2eFigures {
  readonly variant: Variant;
  readonly rate: number;
  readonly sent: number;
  readonly measured: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Client-side latency of POST /orders at that rate. */
  readonly httpP99Ms: number;
  readonly failed: number;
}

const CONNECTIONS = 50;

/** Expected seconds of each phase (weights of the progress bar). */
export const intakeWeight = (s: BenchSizes, variants = 4) =>
  variants * (s.warmupSeconds + s.intakeRounds * s.intakeSeconds) + 6 * idleSeconds(s) + 10;
/** Seconds of each one-connection round (two per side). */
const idleSeconds = (s: BenchSizes) => Math.max(2, s.intakeSeconds / 4);
export const processingWeight = (s: BenchSizes, runs = s.concurrencies.length * 3) =>
  runs * (s.processingOrders / 400 + 4);
/** Rounds of the end-to-end phase, in this order: the tail of one round moves with the machine, so each side runs twice, alternating. */
const E2E_ROUNDS: readonly Variant[] = ['bare', 'system', 'system', 'bare'];
export const e2eWeight = (s: BenchSizes) => E2E_ROUNDS.length * (s.e2eSeconds + Math.max(1, s.warmupSeconds) + 2);

/**
 * The intake processes: the bare handler, the api as benchmarked (warn), the api with group commit
 * off (`INTAKE_GROUP_COMMIT=off`: the ablation) and, for reference, the api at info.
 */
export type IntakeVariant = 'bare' | 'system' | 'system_gc_off' | 'system_info';

/**
 * Intake: the bare intake, the real api (LOG_LEVEL=warn) and the real api at LOG_LEVEL=info (its
 * production default: one access line per request), each a child process on its own database and
 * queue prefix, no worker running. Each is warmed up, then measured in rounds whose order reverses
 * every time (bare, system, info, info, system, bare…) so that load from other work on the machine
 * hits all alike.
 */
export async function measureIntake(ctx: BenchContext): Promise<Record<IntakeVariant, IntakeFigures>> {
  const { sizes } = ctx;
  const backends = ctx.configured;
  const variants: IntakeVariant[] = ctx.profileDir
    ? ['bare', 'system']
    : ['bare', 'system', 'system_gc_off', 'system_info'];
  const weight = intakeWeight(sizes, variants.length) - 10;
  const phase = ctx.progress.phase(
    `intake: autocannon, ${CONNECTIONS} connections, ${sizes.intakeSeconds} s × ${sizes.intakeRounds} rounds each: bare Koa handler, api (warn${variants.includes('system_info') ? '; group commit off; info' : ''}), then one connection`,
    intakeWeight(sizes, variants.length),
  );
  const dbs = Object.fromEntries(variants.map((v) => [v, ctx.cleanup.claim(backends, `intake_${v}`)])) as Record<
    IntakeVariant,
    string
  >;
  const procs: Partial<Record<IntakeVariant, Started>> = {};
  try {
    // Started side by side (nothing is measured yet): a few seconds each, not one after the other.
    // Every process is kept for the `finally` as soon as it is up, even when another fails to start.
    const starting = await Promise.allSettled(
      variants.map(async (v) => {
        procs[v] =
          v === 'bare'
            ? await startBareIntake(ctx, { name: 'intake-bare', backends, db: dbs[v] })
            : await startApi(ctx, {
                name: { system: 'intake-api', system_gc_off: 'intake-api-gc-off', system_info: 'intake-api-info' }[v],
                backends,
                db: dbs[v],
                env: { system: {}, system_gc_off: { INTAKE_GROUP_COMMIT: 'off' }, system_info: { LOG_LEVEL: 'info' } }[
                  v
                ],
              });
      }),
    );
    const failedStart = starting.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failedStart) throw failedStart.reason;
    let elapsed = 0;
    for (const v of variants) {
      phase.update(elapsed / weight, `warming up ${v}`);
      await hammer({ baseUrl: procs[v]!.url, connections: CONNECTIONS, seconds: sizes.warmupSeconds });
      elapsed += sizes.warmupSeconds;
    }
    const order: IntakeVariant[] = [];
    for (let i = 0; i < sizes.intakeRounds; i += 1) order.push(...(i % 2 === 0 ? variants : [...variants].reverse()));
    const results = Object.fromEntries(variants.map((v) => [v, [] as HammerResult[]])) as Record<
      IntakeVariant,
      HammerResult[]
    >;
    const cpu = Object.fromEntries(variants.map((v) => [v, 0])) as Record<IntakeVariant, number>;
    for (const [i, variant] of order.entries()) {
      const proc = procs[variant]!.proc;
      const cpuBefore = await proc.cpuMs();
      const started = Date.now();
      const ticker = setInterval(
        () =>
          phase.update(
            (elapsed + (Date.now() - started) / 1000) / weight,
            `round ${i + 1}/${order.length} (${variant})`,
          ),
        500,
      );
      try {
        const result = await hammer({
          baseUrl: procs[variant]!.url,
          connections: CONNECTIONS,
          seconds: sizes.intakeSeconds,
        });
        results[variant].push(result);
        recordWindow(ctx, proc, { from: started, to: Date.now(), orders: result.ok });
      } finally {
        clearInterval(ticker);
      }
      cpu[variant] += (await proc.cpuMs()) - cpuBefore;
      elapsed += sizes.intakeSeconds;
    }
    // An idle server: one connection, one request at a time, bare and api (and the api with group
    // commit off, when it runs) alternating: bare, api, off, off, api, bare.
    const idle: Partial<Record<IntakeVariant, number[]>> = {};
    const alone = variants.filter((v) => v === 'bare' || v === 'system' || v === 'system_gc_off');
    for (const v of [...alone, ...[...alone].reverse()]) {
      phase.update(elapsed / weight, `one connection (${v})`);
      const r = await oneAtATime({ baseUrl: procs[v]!.url, seconds: idleSeconds(sizes) });
      (idle[v] ??= []).push(...r.latenciesMs);
      elapsed += idleSeconds(sizes);
    }
    const figures = async (variant: IntakeVariant): Promise<IntakeFigures> => {
      const r = results[variant];
      const alone = idle[variant];
      const ok = r.reduce((s, x) => s + x.ok, 0);
      return {
        variant,
        rounds: r,
        rps: mean(r.map((x) => x.rps)),
        p50Ms: mean(r.map((x) => x.p50Ms)),
        p99Ms: mean(r.map((x) => x.p99Ms)),
        cpuUsPerOrder: (cpu[variant] * 1000) / ok,
        peakRssBytes: await procs[variant]!.proc.peakRss(),
        non2xx: r.reduce((s, x) => s + x.non2xx, 0),
        errors: r.reduce((s, x) => s + x.errors, 0),
        ...(alone?.length
          ? { idle: { p50Ms: percentile(alone, 50), p99Ms: percentile(alone, 99), requests: alone.length } }
          : {}),
      };
    };
    const out = {} as Record<IntakeVariant, IntakeFigures>;
    for (const v of variants) out[v] = await figures(v);
    phase.done();
    return out;
  } finally {
    await Promise.all(variants.map((v) => stopAndSave(ctx, procs[v])));
    await Promise.all(variants.map((v) => ctx.cleanup.release(dbs[v])));
  }
}

/**
 * Drains `orders` pre-created orders with ONE worker process of `variant` at `concurrency`.
 * The queue is paused while the orders are seeded and the worker starts, so the clock runs from
 * `resume` to the last order finished (the last processedAt, or the bare worker's own last
 * completion time).
 */
export async function measureProcessing(
  ctx: BenchContext,
  variant: Variant,
  concurrency: number,
  backends: BackendPair = ctx.configured,
  onProgress?: (fraction: number, detail: string) => void,
  worker: { readonly label?: string; readonly env?: Readonly<Record<string, string>> } = {},
): Promise<ProcessingFigures> {
  const orders = ctx.sizes.processingOrders;
  const db = ctx.cleanup.claim(backends, `proc_${variant}_${concurrency}${worker.label ? `_${worker.label}` : ''}`);
  const connection = new Redis(backends.redis.url, { maxRetriesPerRequest: null });
  const queue = benchQueue(connection, db);
  let started: Started | undefined;
  try {
    await queue.pause();
    onProgress?.(0, `${variant} c=${concurrency}: seeding ${orders} orders`);
    await seedWaiting({
      kind: variant,
      db: variant === 'raw' ? undefined : backends.mongo.client.db(db),
      queue,
      count: orders,
    });
    const name = `proc-${variant}-c${concurrency}${worker.label ? `-${worker.label}` : ''}`;
    started =
      variant === 'system'
        ? await startWorker(ctx, { name, backends, db, concurrency, env: worker.env })
        : await startBareWorker(ctx, {
            name,
            backends,
            db,
            concurrency,
            role: variant === 'bare' ? 'processing' : 'noop',
          });
    const cpuBefore = await started.proc.cpuMs();
    const t0 = Date.now();
    await queue.resume();
    const timeoutMs = Math.max(120_000, orders * 20);
    const report = (done: number) => onProgress?.(done / orders, `${variant} c=${concurrency}: ${done}/${orders}`);
    let lastAt: number;
    if (variant === 'system') {
      await waitQueueDrained(backends.redis.client, db, { total: orders, timeoutMs, onProgress: report });
      const processed = await backends.mongo.client.db(db).collection('orders').countDocuments({ status: 'PROCESSED' });
      if (processed !== orders)
        throw new Error(`${started.proc.name}: ${processed} of ${orders} orders PROCESSED after the drain`);
      const last = await backends.mongo.client
        .db(db)
        .collection<{ _id: string; processedAt: Date | null }>('orders')
        .find({ status: 'PROCESSED' }, { projection: { processedAt: 1 } })
        .sort({ processedAt: -1 })
        .limit(1)
        .toArray();
      lastAt = last[0]?.processedAt?.getTime() ?? Date.now();
    } else {
      lastAt = (await started.proc.waitForDone(orders, timeoutMs, report)).lastAt;
    }
    const cpu = (await started.proc.cpuMs()) - cpuBefore;
    const seconds = Math.max(0.001, (lastAt - t0) / 1000);
    recordWindow(ctx, started.proc, { from: t0, to: lastAt, orders });
    return {
      variant,
      ...(worker.label && { label: worker.label }),
      concurrency,
      orders,
      seconds,
      ordersPerSecond: orders / seconds,
      cpuUsPerOrder: (cpu * 1000) / orders,
      peakRssBytes: await started.proc.peakRss(),
    };
  } finally {
    await stopAndSave(ctx, started);
    await queue.close().catch(() => undefined);
    connection.disconnect();
    await ctx.cleanup.release(db);
  }
}

/** Processing runs: for each concurrency, bare, raw BullMQ and the system (in that order). */
export async function measureAllProcessing(
  ctx: BenchContext,
  options: {
    readonly concurrencies?: readonly number[];
    readonly variants?: readonly Variant[];
    /** Adds the system worker at concurrency 10 with WORKER_BATCH_WRITES=off (the batching ablation). */
    readonly ablation?: boolean;
  } = {},
): Promise<ProcessingFigures[]> {
  const concurrencies = options.concurrencies ?? ctx.sizes.concurrencies;
  const variants = options.variants ?? (['bare', 'raw', 'system'] as const);
  type Run = readonly [Variant, number, { label?: string; env?: Record<string, string> }];
  const runs: Run[] = concurrencies.flatMap((c) => variants.map((v): Run => [v, c, {}]));
  if (options.ablation ?? true) runs.push(['system', 10, { label: 'unbatched', env: { WORKER_BATCH_WRITES: 'off' } }]);
  const phase = ctx.progress.phase(
    `processing: ${ctx.sizes.processingOrders} pre-created orders drained by one worker process, concurrency ${concurrencies.join(' and ')}${(options.ablation ?? true) ? ', and the batching ablation at 10' : ''}`,
    processingWeight(ctx.sizes, runs.length),
  );
  const out: ProcessingFigures[] = [];
  for (const [i, [variant, concurrency, worker]] of runs.entries()) {
    out.push(
      await measureProcessing(
        ctx,
        variant,
        concurrency,
        ctx.configured,
        (f, detail) => phase.update((i + f) / runs.length, `${detail}${worker.label ? ` (${worker.label})` : ''}`),
        worker,
      ),
    );
  }
  phase.done();
  return out;
}

/**
 * End to end: orders at a fixed rate (evenly spaced) into an intake process with one worker at
 * concurrency 10 draining them; latency = processedAt - createdAt of each order, as stored. Each side
 * runs two rounds (bare, system, system, bare) and its percentiles are over both rounds' orders.
 */
export async function measureE2e(
  ctx: BenchContext,
  rate: number,
  workers = 1,
): Promise<{ system: E2eFigures; bare: E2eFigures }> {
  const { sizes } = ctx;
  const backends = ctx.configured;
  const warmupSeconds = Math.max(1, sizes.warmupSeconds);
  const phase = ctx.progress.phase(
    `end to end: ${rate} orders/s for ${sizes.e2eSeconds} s, accepted → PROCESSED, ${workers} worker(s) at concurrency 10`,
    e2eWeight(sizes),
  );
  type Round = { sent: number; failed: number; latencies: number[]; httpLatencies: number[] };
  const run = async (variant: Variant, index: number): Promise<Round> => {
    const db = ctx.cleanup.claim(backends, `e2e_${variant}`);
    let intake: Started | undefined;
    const started: Started[] = [];
    try {
      // The intake and the workers start side by side (nothing is measured yet); each is kept for the
      // `finally` as soon as it is up, even when another fails to start.
      const worker = (w: number) =>
        variant === 'system'
          ? startWorker(ctx, { name: `e2e-worker-${w}`, backends, db, concurrency: 10 })
          : startBareWorker(ctx, { name: `e2e-bare-worker-${w}`, backends, db, role: 'processing', concurrency: 10 });
      const starting = await Promise.allSettled([
        (variant === 'system'
          ? startApi(ctx, { name: 'e2e-api', backends, db })
          : startBareIntake(ctx, { name: 'e2e-bare-intake', backends, db })
        ).then((s) => (intake = s)),
        ...Array.from({ length: workers }, (_, i) => worker(i + 1).then((s) => started.push(s))),
      ]);
      const failedStart = starting.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failedStart) throw failedStart.reason;
      if (!intake) throw new Error('e2e: the intake process did not start');
      const warm = await paced({ baseUrl: intake.url, rate, seconds: warmupSeconds });
      await sleep(500);
      const measuredFrom = new Date();
      const total = Math.round(rate * sizes.e2eSeconds);
      const result = await paced({
        baseUrl: intake.url,
        rate,
        seconds: sizes.e2eSeconds,
        onTick: (sent) =>
          phase.update(
            (index + (0.8 * sent) / total) / E2E_ROUNDS.length,
            `${variant} (round ${index + 1}/${E2E_ROUNDS.length}): ${sent}/${total} sent`,
          ),
      });
      const expected = warm.ok + result.ok;
      const timeoutMs = 120_000;
      // Both kinds of worker leave the order PROCESSED with its processedAt (the bare one by hand).
      await pollUntil(
        async () =>
          (await backends.mongo.client.db(db).collection('orders').countDocuments({ status: 'PROCESSED' })) >= expected,
        {
          timeoutMs,
          everyMs: 250,
          message: () => `${variant}: ${expected} orders not PROCESSED within ${timeoutMs} ms`,
        },
      );
      const docs = await backends.mongo.client
        .db(db)
        .collection<{ _id: string; createdAt: Date; processedAt: Date | null }>('orders')
        .find({ createdAt: { $gte: measuredFrom } }, { projection: { createdAt: 1, processedAt: 1 } })
        .toArray();
      const latencies = docs.filter((d) => d.processedAt).map((d) => d.processedAt!.getTime() - d.createdAt.getTime());
      phase.update((index + 1) / E2E_ROUNDS.length, `${variant} round done`);
      return {
        sent: result.sent,
        failed: result.failed + warm.failed,
        latencies,
        httpLatencies: result.latenciesMs,
      };
    } finally {
      await Promise.all([stopAndSave(ctx, intake), ...started.map((w) => stopAndSave(ctx, w))]);
      await ctx.cleanup.release(db);
    }
  };
  const rounds: { variant: Variant; round: Round }[] = [];
  for (const [index, variant] of E2E_ROUNDS.entries()) rounds.push({ variant, round: await run(variant, index) });
  phase.done();
  const pooled = (variant: Variant): E2eFigures => {
    const mine = rounds.filter((r) => r.variant === variant).map((r) => r.round);
    const latencies = mine.flatMap((r) => r.latencies);
    return {
      variant,
      rate,
      sent: mine.reduce((sum, r) => sum + r.sent, 0),
      measured: latencies.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: percentile(latencies, 100),
      httpP99Ms: percentile(
        mine.flatMap((r) => r.httpLatencies),
        99,
      ),
      failed: mine.reduce((sum, r) => sum + r.failed, 0),
    };
  };
  return { system: pooled('system'), bare: pooled('bare') };
}

export interface WebhookFigures {
  readonly off: ProcessingFigures;
  readonly dead: ProcessingFigures;
}

/** Expected seconds of the phase on a slow host: two drains of `processingOrders` at concurrency 10. */
export const webhooksWeight = (s: BenchSizes) => 2 * (s.processingOrders / 250 + 6);

/**
 * Processing with webhooks on and a receiver that accepts connections and never answers, against
 * webhooks off, same run, concurrency 10: a dead receiver must not slow order processing (issue 14:
 * ≥ 0.95×). Both workers run with NODE_ENV=test, as production refuses a loopback WEBHOOK_URL.
 */
export async function measureWebhooks(ctx: BenchContext): Promise<WebhookFigures> {
  const phase = ctx.progress.phase(
    `webhooks: ${ctx.sizes.processingOrders} orders, one worker at concurrency 10, webhooks off vs a receiver that never answers`,
    webhooksWeight(ctx.sizes),
  );
  const sockets = new Set<Socket>();
  const receiver = createServer((socket) => {
    sockets.add(socket); // accepted, read, never answered
    socket.on('close', () => sockets.delete(socket));
    socket.resume();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const port = (receiver.address() as { port: number }).port;
  try {
    const env = { NODE_ENV: 'test' };
    const off = await measureProcessing(ctx, 'system', 10, ctx.configured, (f, d) => phase.update(f / 2, `off: ${d}`), {
      label: 'hooks_off',
      env,
    });
    const dead = await measureProcessing(
      ctx,
      'system',
      10,
      ctx.configured,
      (f, d) => phase.update((1 + f) / 2, `dead receiver: ${d}`),
      {
        label: 'hooks_dead',
        env: {
          ...env,
          WEBHOOK_URL: `http://127.0.0.1:${port}/hooks`,
          WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
        },
      },
    );
    phase.done();
    return { off, dead };
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
}
