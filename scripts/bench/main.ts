/**
 * The benchmark (issue 8): what the system costs per order on top of raw BullMQ + MongoDB, and that
 * the cost stays flat as work grows. Starts the real api and worker processes, measures them beside
 * minimal baselines in the same run, prints a table with the targets beside the figures and writes
 * it (JSON and Markdown) under results/bench-<time>/.
 *
 *   npm run bench                    # the full run (under 10 minutes on 2 cores)
 *   npm run bench -- --quick         # smaller sizes, a couple of minutes
 *   npm run bench -- --profile       # intake and processing (or --only's phases), --cpu-prof on every process
 *
 * Traffic goes to 127.0.0.1 only. REDIS_URL and MONGO_URL are used in databases and queue prefixes
 * of the run's own (removed afterwards); command counts use a private redis-server and a private
 * MongoDB stand-in started (and stopped) by the bench.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BenchSetupError,
  configuredMongo,
  configuredRedis,
  privateRedis,
  privateStandin,
  type MongoBackend,
  type RedisBackend,
} from './backends.js';
import { connectionsWeight, measureConnections } from './phase-connections.js';
import { countsWeight, measureCounts } from './phase-counts.js';
import { fleetWeight, measureFleet } from './phase-fleet.js';
import { fairnessWeight, measureFairness } from './phase-fairness.js';
import { growthWeight, measureGrowth } from './phase-growth.js';
import {
  e2eWeight,
  intakeWeight,
  measureAllProcessing,
  measureE2e,
  measureIntake,
  measureWebhooks,
  processingWeight,
  webhooksWeight,
} from './phase-throughput.js';
import { killAllChildren } from './processes.js';
import { comparisonMarkdown, profileMarkdown, summarizeProfiles } from './profile.js';
import { Progress } from './progress.js';
import { buildRows, markdownReport, methodNotes, textTable, type BenchFigures, type BenchMeta } from './report.js';
import {
  Cleanup,
  DEFAULT_SIZES,
  QUICK_SIZES,
  SYSTEM_ENV,
  fitToBudget,
  leastSecondsLeft,
  type BackendPair,
  type BenchContext,
  type BenchSizes,
} from './rig.js';
import { fmt } from './stats.js';
import { REPO_ROOT } from '../lib/process-runner.js';

const PHASES = [
  'intake',
  'processing',
  'fleet',
  'e2e',
  'counts',
  'growth',
  'webhooks',
  'connections',
  'fairness',
] as const;
type Phase = (typeof PHASES)[number];
/** The phases whose length goes by their orders, after the fleet: they shrink on a host too slow for the budget. */
const SCALED_PHASES: readonly Phase[] = ['counts', 'growth', 'webhooks', 'fairness'];

const USAGE = `usage: npm run bench -- [--quick] [--profile] [--only LIST] [--private]

  --quick       smaller sizes (a couple of minutes); default: the full run (under 10 minutes)
  --profile     intake and processing (concurrency 10), or the phases of --only, every process run
                with --cpu-prof; writes the profiles and their summary (profiles.md) to the results folder
  --only LIST   phases to run, comma-separated: ${PHASES.join(', ')}
  --private     run the throughput phases on the private Redis and MongoDB too (default: REDIS_URL
                and MONGO_URL; the counts and growth phases always use private servers when they can)

Environment: REDIS_URL and MONGO_URL (defaults redis://127.0.0.1:6379, mongodb://127.0.0.1:27017/orders).
On this machine and in CI: source ../shared/ci/services.sh first.`;

function parseCli(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      only: { type: 'string' },
      private: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const only = values.only
    ? values.only.split(',').map((p) => {
        const phase = p.trim() as Phase;
        if (!PHASES.includes(phase))
          throw new BenchSetupError(`--only: unknown phase '${p}' (known: ${PHASES.join(', ')})`);
        return phase;
      })
    : undefined;
  return { ...values, only };
}

function timestamp(date: Date): string {
  return date.toISOString().replace(/[:.]/g, '-');
}

/** Stops for the private servers, run however the bench ends. */
const stoppers: (() => Promise<void>)[] = [];

/** Private servers for the counts; the configured ones (with a note) when none can be started. */
async function countingBackends(configured: BackendPair, notes: string[]): Promise<BackendPair> {
  const redis = await privateRedis();
  if (!('error' in redis)) stoppers.push(() => redis.stop());
  const mongo = await privateStandin();
  if (!('error' in mongo)) stoppers.push(() => mongo.stop());
  let pickedRedis: RedisBackend;
  let pickedMongo: MongoBackend;
  if ('error' in redis) {
    notes.push(
      `No private redis-server (${redis.error}): Redis command counts come from REDIS_URL and include other clients' traffic.`,
    );
    pickedRedis = configured.redis;
  } else pickedRedis = redis;
  if ('error' in mongo) {
    notes.push(
      `No private MongoDB stand-in (${mongo.error}): MongoDB command counts come from MONGO_URL's server-wide counters and include other clients' traffic.`,
    );
    pickedMongo = configured.mongo;
  } else pickedMongo = mongo;
  return { redis: pickedRedis, mongo: pickedMongo };
}

function describeRedis(r: RedisBackend): string {
  return r.kind === 'private'
    ? `a private redis-server ${r.version} (${r.url}, started by the bench)`
    : `REDIS_URL (Redis ${r.version})`;
}

async function main(): Promise<number> {
  const cli = parseCli(process.argv.slice(2));
  if (cli.help) {
    console.log(USAGE);
    return 0;
  }
  for (const file of ['dist/api/main.js', 'dist/worker/main.js', 'dist/scripts/bench/bare-worker.js']) {
    if (!existsSync(join(REPO_ROOT, file))) {
      throw new BenchSetupError(`${file} is missing: run the bench with \`npm run bench\` (it builds first).`);
    }
  }
  const started = new Date();
  const sizes: BenchSizes = cli.quick ? QUICK_SIZES : DEFAULT_SIZES;
  const mode: BenchMeta['mode'] = cli.profile ? 'profile' : cli.quick ? 'quick' : 'default';
  const phases: readonly Phase[] = cli.only ?? (cli.profile ? ['intake', 'processing'] : PHASES);
  const runId = randomBytes(3).toString('hex');
  const outDir = join(REPO_ROOT, 'results', `bench-${timestamp(started)}`);
  const folder = relative(process.cwd(), outDir) || '.';
  const profileDir = cli.profile ? join(outDir, 'profiles') : undefined;
  const loadStart = loadavg()[0];

  console.log(`order-fleet benchmark (${mode}) → ${folder}`);
  console.log(
    `Real processes run with ${Object.entries(SYSTEM_ENV)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}: rate limiting OFF, logging at WARN.`,
  );
  console.log(
    'This machine is shared: throughput and latency are noisy, so each is given as a ratio against a baseline measured in the same run; counts are exact.',
  );

  const configured: BackendPair = {
    redis: await configuredRedis(process.env),
    mongo: await configuredMongo(process.env),
  };
  // The folder is made once the services answer: a run that cannot start leaves nothing behind.
  await mkdir(join(outDir, 'logs'), { recursive: true });
  if (profileDir) await mkdir(profileDir, { recursive: true });
  const notes: string[] = [];
  const counting = await countingBackends(configured, notes);
  const throughput = cli.private ? counting : configured;
  if (configured.mongo.server === 'standin' || throughput.mongo.server === 'standin') {
    notes.push(
      'MongoDB here is the in-memory wire-protocol stand-in (../shared/mongo-standin), not a real mongod: it runs every command to completion one at a time and scans for all but _id lookups, so absolute figures are not MongoDB figures; ratios against the bare baseline on the same server are what this run can tell.',
    );
  }
  console.log(`Throughput phases: ${describeRedis(throughput.redis)}; ${throughput.mongo.description}.`);
  console.log(`Counts and growth: ${describeRedis(counting.redis)}; ${counting.mongo.description}.`);

  const weights: Record<Phase, number> = {
    intake: intakeWeight(sizes, cli.profile ? 2 : 4),
    processing: cli.profile ? processingWeight(sizes, 2) : processingWeight(sizes),
    e2e: e2eWeight(sizes),
    counts: countsWeight(sizes),
    growth: growthWeight(sizes),
    webhooks: webhooksWeight(sizes),
    connections: connectionsWeight(sizes),
    fleet: fleetWeight(sizes),
    fairness: fairnessWeight(sizes),
  };
  const progress = new Progress(phases.reduce((s, p) => s + weights[p], 0));
  const cleanup = new Cleanup(runId);
  const ctx: BenchContext = {
    runId,
    sizes,
    configured: throughput,
    counting,
    outDir,
    profileDir,
    progress,
    cleanup,
    windows: new Map(),
  };

  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    progress.log('interrupted: stopping the processes and removing the run’s data (Ctrl-C again to quit at once)');
    killAllChildren();
    void cleanup
      .releaseAll()
      .then(() => Promise.allSettled(stoppers.map((stop) => stop())))
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const figures: BenchFigures = {};
  const errors: string[] = [];
  const phaseSeconds: Record<string, number> = {};
  /** How each count-based phase after the fleet was scaled to stay within the run's budget. */
  const scales: Partial<Record<Phase, number>> = {};
  /** How much slower than planned this host ran the processing phase (1 before it ran). */
  const slowness = () => (phaseSeconds.processing !== undefined ? phaseSeconds.processing / weights.processing : 1);
  /**
   * What `list` of phases is expected to take: the timed ones by their weights, the count-based ones at
   * their planned sizes times this host's slowness.
   */
  const expectedSeconds = (list: readonly Phase[]) => {
    const sum = (some: readonly Phase[]) => some.reduce((s, p) => s + weights[p], 0);
    return {
      fixedSeconds: sum(list.filter((p) => !SCALED_PHASES.includes(p))),
      countedSeconds: slowness() * sum(list.filter((p) => SCALED_PHASES.includes(p))),
    };
  };
  /**
   * The context of a phase: a count-based phase after the fleet gets sizes that fit in what is left
   * of the run's budget on this host (fitToBudget), judged by how much slower than planned this host
   * ran the processing phase; the others run at the planned sizes.
   */
  const contextFor = (phase: Phase): BenchContext => {
    if (!SCALED_PHASES.includes(phase)) return ctx;
    const fit = fitToBudget(sizes, {
      leftSeconds: sizes.runBudgetSeconds - (Date.now() - started.getTime()) / 1000,
      ...expectedSeconds(phases.slice(phases.indexOf(phase))),
    });
    if (fit.scale < 1) {
      scales[phase] = fit.scale;
      progress.log(
        `  ${phase}: orders scaled to ${fmt(fit.scale * 100)}% to end within the run's ${sizes.runBudgetSeconds} s (this host ran the processing phase ${fmt(slowness(), 2)}× its planned time)`,
      );
    }
    return { ...ctx, sizes: fit.sizes };
  };
  const attempt = async (phase: Phase, run: () => Promise<void>) => {
    if (!phases.includes(phase)) return;
    const phaseStart = Date.now();
    try {
      await run();
      phaseSeconds[phase] = (Date.now() - phaseStart) / 1000;
      progress.log(`✓ ${phase} took ${fmt(phaseSeconds[phase], 0)} s`);
    } catch (err) {
      phaseSeconds[phase] = (Date.now() - phaseStart) / 1000;
      const message = err instanceof Error ? err.message : String(err);
      errors.push(`${phase}: ${message}`);
      progress.log(
        `✗ ${phase} broke: ${message}\n  (process output is in ${join(folder, 'logs')}; the other phases go on)`,
      );
    }
  };

  try {
    await attempt('intake', async () => {
      figures.intake = await measureIntake(ctx);
    });
    await attempt('processing', async () => {
      figures.processing = await measureAllProcessing(
        ctx,
        cli.profile ? { concurrencies: [10], variants: ['bare', 'system'], ablation: false } : {},
      );
    });
    await attempt('fleet', async () => {
      // Start each side's search at 1.25× its own one-worker processing rate: over what two workers
      // sharing two cores with the intake make, as a rule, so the first step measures what the fleet
      // processes and the next starts there; a few short steps, and a full run stays under 10 minutes.
      // Without the processing phase, a guess well over this machine's fleet (the first step then
      // measures what it processes), not under it: a search going up from too low takes every step.
      const c10 = (v: string) =>
        1.25 *
        (figures.processing?.find((p) => p.variant === v && !p.label && p.concurrency === 10)?.ordersPerSecond ?? 600);
      // The step-down hold only when the phases after this one still fit in the run's budget, the
      // count-based ones shrunk as far as they may be (the fleet's figure is a target; theirs hold at half).
      const least = leastSecondsLeft(expectedSeconds(phases.slice(phases.indexOf('fleet') + 1)));
      const deadline = started.getTime() + (sizes.runBudgetSeconds - least) * 1000;
      figures.fleet = await measureFleet(ctx, { system: c10('system'), bare: c10('bare') }, deadline);
    });
    await attempt('e2e', async () => {
      if (figures.fleet && figures.fleet.system.rate > 0) {
        // Issue 17: end to end at half the fleet's sustainable rate, on the same fleet (two workers).
        const rate = Math.max(10, Math.round(figures.fleet.system.rate / 2));
        figures.e2e = {
          ...(await measureE2e(ctx, rate, 2)),
          rateNote: `Rate ${rate}/s: half the system fleet's sustainable rate measured in this run (${fmt(figures.fleet.system.rate)}/s), api + 2 workers on each side.`,
        };
        return;
      }
      // A fixed rate well under capacity (api and worker share the machine during this phase), so the
      // latency is not queueing behind a saturated stage.
      const intakeRps = figures.intake?.system.rps ?? Infinity;
      const processRps = figures.processing?.find(
        (p) => p.variant === 'system' && !p.label && p.concurrency === 10,
      )?.ordersPerSecond;
      // Both stages share the machine here: one order costs an intake and a processing step.
      const capacity = 1 / (1 / intakeRps + 1 / (processRps ?? Infinity));
      const rate = Math.max(20, Math.min(sizes.e2eRate, Math.floor(capacity / 3 / 10) * 10));
      const rateNote =
        rate < sizes.e2eRate
          ? `Rate ${rate}/s: a third of the system's measured capacity with api and worker sharing the machine (${fmt(capacity)}/s = 1 / (1/intake + 1/processing at concurrency 10)), below the planned ${sizes.e2eRate}/s.`
          : `Rate ${rate}/s (the planned rate; measured capacity ${Number.isFinite(capacity) ? fmt(capacity) : 'not measured'}/s).`;
      figures.e2e = { ...(await measureE2e(ctx, rate)), rateNote };
    });
    await attempt('counts', async () => {
      figures.counts = await measureCounts(contextFor('counts'));
    });
    await attempt('growth', async () => {
      figures.growth = await measureGrowth(contextFor('growth'));
    });
    await attempt('webhooks', async () => {
      figures.webhooks = await measureWebhooks(contextFor('webhooks'));
    });
    await attempt('connections', async () => {
      // Half the sustainable rate (issue 17): the fleet's when measured, else the api's intake rate, halved.
      const intakeRps = figures.intake?.system.rps;
      const fleetRate = figures.fleet?.system.rate;
      const rate = fleetRate
        ? {
            perSecond: Math.max(50, Math.round(fleetRate / 2)),
            note: 'half the fleet’s sustainable rate measured in this run',
          }
        : intakeRps !== undefined && Number.isFinite(intakeRps)
          ? {
              perSecond: Math.max(50, Math.round(intakeRps / 2)),
              note: 'half the api’s intake rate measured in this run',
            }
          : { perSecond: 250, note: '250/s: intake not measured in this run (run with the intake phase to derive it)' };
      figures.connections = await measureConnections(ctx, rate);
    });
    await attempt('fairness', async () => {
      figures.fairness = await measureFairness(contextFor('fairness'));
    });
  } finally {
    progress.stop();
    await cleanup.releaseAll();
  }

  const meta: BenchMeta = {
    startedAt: started.toISOString(),
    seconds: (Date.now() - started.getTime()) / 1000,
    phaseSeconds,
    mode,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 1024 ** 3),
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      loadAverage: { start: loadStart, end: loadavg()[0] },
    },
    backends: {
      throughput: { redis: describeRedis(throughput.redis), mongo: throughput.mongo.description },
      counts: { redis: describeRedis(counting.redis), mongo: counting.mongo.description },
    },
    settings: { ...SYSTEM_ENV },
    sizes,
    notes: [
      ...notes,
      ...(cli.profile
        ? ['Profiled run: --cpu-prof slows every process; use its figures for where time goes, not for ratios.']
        : []),
      ...(Object.keys(scales).length > 0
        ? [
            `This host ran slower than the run's ${sizes.runBudgetSeconds} s budget allows, so phases after the fleet ran with fewer orders (their per-order figures are noisier): ${Object.entries(
              scales,
            )
              .map(([phase, scale]) => `${phase} ${fmt(scale * 100)}%`)
              .join(', ')} of the planned sizes.`,
          ]
        : []),
    ],
    errors,
  };
  const rows = buildRows(figures);
  console.log('');
  console.log(textTable(rows));
  console.log('');
  for (const note of [...methodNotes(meta), ...meta.notes]) console.log(`· ${note}`);
  const verdicts = rows.filter((r) => r.verdict === 'PASS' || r.verdict === 'FAIL');
  console.log(
    `\nTargets: ${verdicts.filter((r) => r.verdict === 'PASS').length} PASS, ${verdicts.filter((r) => r.verdict === 'FAIL').length} FAIL (informational; the bench exits 0 unless it broke).`,
  );

  await writeFile(join(outDir, 'bench.json'), JSON.stringify({ meta, rows, figures }, null, 2) + '\n');
  let markdown = markdownReport(meta, rows, figures, folder);
  if (profileDir) {
    const summaries = await summarizeProfiles(profileDir, ctx.windows);
    const pairs = [
      ['intake-api', 'intake-bare'],
      ['proc-system-c10', 'proc-bare-c10'],
    ] as const;
    const comparisons: string[] = [];
    for (const [systemName, bareName] of pairs) {
      const system = summaries.find((p) => p.name === systemName);
      const bare = summaries.find((p) => p.name === bareName);
      if (system && bare) comparisons.push(comparisonMarkdown(system, bare));
    }
    const profileText = `${comparisons.join('\n\n')}\n\n${profileMarkdown(summaries)}`;
    await writeFile(join(outDir, 'profiles.md'), `# CPU profiles (${meta.startedAt})\n\n${profileText}\n`);
    await writeFile(join(outDir, 'profiles.json'), JSON.stringify(summaries, null, 2) + '\n');
    markdown += `\n## CPU profiles\n\n${comparisons.join('\n\n')}\n\nDetails: profiles.md; raw profiles: profiles/*.cpuprofile (Chrome DevTools opens them).\n`;
    console.log('');
    for (const c of comparisons) console.log(`${c}\n`);
  }
  await writeFile(join(outDir, 'bench.md'), markdown + '\n');
  console.log(`\nResults: ${folder}/ (bench.md, bench.json${profileDir ? ', profiles.md, profiles/' : ''}, logs/)`);
  if (errors.length > 0)
    console.log(`\n${errors.length} phase(s) broke:\n${errors.map((e) => `  - ${e.split('\n')[0]}`).join('\n')}`);

  await Promise.allSettled([
    ...stoppers.splice(0).map((stop) => stop()),
    configured.redis.stop(),
    configured.mongo.stop(),
  ]);
  return errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    killAllChildren();
    if (err instanceof BenchSetupError) console.error(`bench: ${err.message}`);
    else console.error(`bench: failed: ${err instanceof Error ? err.stack : String(err)}`);
    await Promise.allSettled(stoppers.map((stop) => stop()));
    process.exit(1);
  },
);
