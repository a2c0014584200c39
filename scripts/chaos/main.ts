/**
 * The fault battery (issue 3, "Nothing lost, nothing doubled"): starts the real processes (api,
 * several workers, health) against a private Redis and a private MongoDB per scenario, injects each
 * fault, and prints a table of figures with PASS or FAIL per scenario. Exit code 1 when any fails.
 *
 *   npm run chaos                      # every scenario, the issue's sizes
 *   npm run chaos -- --quick           # smaller sizes (the ones the tests use)
 *   npm run chaos -- --only 2,3        # some scenarios
 *
 * It never touches the Redis and MongoDB other work uses (REDIS_URL, MONGO_URL are ignored), and
 * sends traffic to 127.0.0.1 only.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { API_MONGO_TIMEOUT_MS } from '../../api/settings.js';
import {
  LOCK_DURATION_MS,
  MAX_STALLED_COUNT,
  STALLED_INTERVAL_MS,
  WORKER_MONGO_TIMEOUT_MS,
} from '../../worker/settings.js';
import { BATTERY, selectScenarios } from './battery.js';
import { RECOVERY_BOUND_MS } from './measure.js';
import { PrivateMongo, type MongoChoice } from './private-services.js';
import { createProgressDisplay } from './progress.js';
import { killAllNow, trackedProcesses } from './reaper.js';
import { fullReport } from './report.js';
import { BATTERY_ENV } from './rig.js';
import type { ScenarioResult } from './types.js';
import { REPO_ROOT } from '../lib/process-runner.js';

const USAGE = `usage: npm run chaos -- [--quick] [--only 1,2,...] [--mongo auto|standin|mongod]
                        [--env NAME=VALUE ...] [--logs DIR | --no-logs] [--json FILE]

  --quick        smaller sizes (a few minutes in all); default: the sizes of issue 3
  --only LIST    scenarios to run, by number (${BATTERY.map((e) => e.id).join(', ')})
  --mongo KIND   private MongoDB: auto (mongod when a binary is at hand without a download, else the
                 stand-in from ../shared/mongo-standin), standin, or mongod (may download it)
  --env N=V      a variable for every process of every scenario (e.g. HEALTH_TIMEOUT_MS=500)
  --logs DIR     where each process's output goes (default results/chaos/<time>); --no-logs: nowhere
  --json FILE    also write the results as JSON

Scenarios:
${BATTERY.map((e) => `  ${String(e.id).padStart(2)}  ${e.title}: ${e.fault(false)}`).join('\n')}`;

function parseCli(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      mongo: { type: 'string', default: 'auto' },
      env: { type: 'string', multiple: true, default: [] },
      logs: { type: 'string' },
      'no-logs': { type: 'boolean', default: false },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const only = (values.only ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => {
      if (!/^\d+$/.test(x)) throw new Error(`--only takes scenario numbers, got '${x}'`);
      return Number(x);
    });
  if (!['auto', 'standin', 'mongod'].includes(values.mongo)) {
    throw new Error(`--mongo must be auto, standin or mongod, got '${values.mongo}'`);
  }
  const env: Record<string, string> = {};
  for (const pair of values.env) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(pair);
    if (!match) throw new Error(`--env takes NAME=VALUE, got '${pair}'`);
    if (['MONGO_URL', 'REDIS_URL', 'QUEUE_PREFIX', 'API_PORT', 'HEALTH_PORT'].includes(match[1])) {
      throw new Error(`--env ${match[1]} is set by the battery itself (private services, free ports)`);
    }
    env[match[1]] = match[2];
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const logDir = values['no-logs'] ? undefined : resolve(values.logs ?? join(REPO_ROOT, 'results', 'chaos', stamp));
  return {
    help: values.help,
    quick: values.quick,
    only,
    mongo: values.mongo as MongoChoice,
    env,
    logDir,
    json: values.json,
  };
}

async function main(): Promise<number> {
  let options: ReturnType<typeof parseCli>;
  try {
    options = parseCli(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`chaos: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const scenarios = selectScenarios(options.only);

  const interrupt = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) {
      process.stderr.write(
        `\nchaos: ${signal}: stopping the current scenario and cleaning up (again to kill at once)\n`,
      );
      interrupt.abort();
    } else {
      const killed = killAllNow();
      process.stderr.write(`chaos: killed ${killed} processes\n`);
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const mongoKind =
    options.mongo === 'standin'
      ? 'stand-in'
      : options.mongo === 'mongod' || (await PrivateMongo.mongodAvailable(process.env))
        ? 'mongod (mongodb-memory-server-core)'
        : 'stand-in (no mongod binary at hand: MONGOMS_SYSTEM_BINARY unset, none cached)';
  const settings = {
    ...BATTERY_ENV,
    ...options.env,
  };
  process.stdout.write(
    [
      `fault battery: ${scenarios.length} scenario(s), ${options.quick ? 'quick' : 'full'} sizes`,
      `private services per scenario: redis-server on a free port; MongoDB ${mongoKind}`,
      `settings: lock ${LOCK_DURATION_MS} ms, stalled check ${STALLED_INTERVAL_MS} ms, max stalled ${MAX_STALLED_COUNT}, ` +
        `recovery bound ${RECOVERY_BOUND_MS} ms; MongoDB timeouts api ${API_MONGO_TIMEOUT_MS} ms / worker ${WORKER_MONGO_TIMEOUT_MS} ms; ` +
        Object.entries(settings)
          .map(([k, v]) => `${k}=${v}`)
          .join(' '),
      options.logDir ? `process logs: ${options.logDir}` : 'process logs: not kept',
      '',
    ].join('\n'),
  );

  const display = createProgressDisplay({ stream: process.stdout });
  const results: ScenarioResult[] = [];
  try {
    for (const scenario of scenarios) {
      if (interrupt.signal.aborted) break;
      const progress = display.forScenario(`#${scenario.id} ${scenario.title}`);
      const result = await scenario.run(
        { progress, signal: interrupt.signal, mongo: options.mongo, env: options.env, logDir: options.logDir },
        options.quick,
      );
      results.push(result);
      progress.log(`${result.pass ? 'PASS' : 'FAIL'} in ${(result.durationMs / 1000).toFixed(1)} s`);
    }
  } finally {
    display.close();
  }

  process.stdout.write(`\n${fullReport(results)}\n`);
  if (options.json) {
    await mkdir(resolve(options.json, '..'), { recursive: true });
    await writeFile(options.json, `${JSON.stringify({ quick: options.quick, settings, results }, null, 2)}\n`);
    process.stdout.write(`results written to ${options.json}\n`);
  }
  const leftovers = trackedProcesses();
  if (leftovers.length > 0) {
    process.stderr.write(
      `chaos: ${leftovers.length} processes still running; killing them: ${leftovers.map((p) => `${p.name}(${p.pid})`).join(' ')}\n`,
    );
    killAllNow();
  }
  if (interrupt.signal.aborted) return 130;
  return results.every((r) => r.pass) && results.length === scenarios.length ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAllNow();
    process.exit(1);
  },
);
