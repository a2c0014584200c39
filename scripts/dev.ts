/**
 * Local launcher (`npm start`, `npm run dev`): the api, two workers and the health process, over
 * REDIS_URL/MONGO_URL when set (they must answer), else over an embedded redis-server and mongod.
 * Ctrl-C or SIGTERM stops everything gracefully; a second one kills at once.
 *
 * `--watch` (`npm run dev`): `tsc --watch` rebuilds on save and each process whose compiled files
 * changed is restarted (all three for `common/`); a process that crashes waits for the next save;
 * log lines are human-readable (pino-pretty) when stdout is a terminal or LOG_PRETTY=1.
 * `--no-tsc`: watch `dist/` only (rebuilt by something else). `npm start` stays the production-like run.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ConfigError, loadConfig, type Config } from '#common';
import { describeBackingService, formatBanner, isServed, portFromLogLine } from './lib/banner.js';
import { resolveMongo, resolveRedis } from './lib/embedded-services.js';
import { withWarningsAsCauses } from './lib/library-warnings.js';
import { colourWanted, createPrefixer, prettyLogLine } from './lib/prefix.js';
import { runInOwnProcessGroup } from './lib/process-group.js';
import { READY_LINE, REPO_ROOT, startProcess, type RunningProcess, type ServiceName } from './lib/process-runner.js';
import {
  createSupervisor,
  describeExit,
  errorMessage,
  handleStopSignals,
  StopRequested,
  type Supervisor,
} from './lib/supervisor.js';
import { watchDist } from './lib/watch.js';
import { startWebhookReceiver } from './lib/webhook-receiver.js';

const WORKERS = ['worker-1', 'worker-2'];
const READY_TIMEOUT_MS = 60_000;
const DATABASE = 'orders';
const REDIS = { variable: 'REDIS_URL', program: 'redis-server' };
const MONGO = { variable: 'MONGO_URL', program: 'mongod' };
const WATCH = process.argv.includes('--watch');
const TSC = !process.argv.includes('--no-tsc');
const RESTART_DEBOUNCE_MS = 300;
const colour = colourWanted(process.stdout, process.env);
// The launcher's own lines are labelled `dev`, the compiler's `tsc`.
const prefixer = createPrefixer(['api', ...WORKERS, 'health', 'payments', 'hooks', 'dev', 'tsc'], { color: colour });
const say = (text: string) => process.stdout.write(`${prefixer.formatLines('dev', text)}\n`);
const complain = (text: string) => process.stderr.write(`${prefixer.formatLines('dev', text)}\n`);
/** Set in watch mode for a terminal (or LOG_PRETTY=1): JSON log lines are shown through pino-pretty. */
let pretty: ((line: string) => string) | undefined;
const printer = (name: string) => (line: string) =>
  process.stdout.write(`${prefixer.formatLines(name, pretty ? pretty(line) : line)}\n`);

/** A process of the local fleet: which program it runs, and its current run (replaced on restart). */
interface FleetEntry {
  readonly service: ServiceName;
  proc: RunningProcess;
}

async function startFleet(supervisor: Supervisor, config: Config): Promise<FleetEntry[]> {
  const env = process.env;
  if (!env.REDIS_URL) say('REDIS_URL is not set: starting an embedded redis-server from the PATH');
  const redis = { ...(await supervisor.acquire(resolveRedis(env, { strict: true }))), ...REDIS };
  say(`Redis: ${describeBackingService(redis)}`);
  if (!env.MONGO_URL) {
    say(
      'MONGO_URL is not set: starting an embedded mongod through mongodb-memory-server ' +
        '(downloaded on first use, or the binary named by MONGOMS_SYSTEM_BINARY)',
    );
  }
  const mongo = {
    ...(await supervisor.acquire(withWarningsAsCauses(() => resolveMongo(env, DATABASE, { strict: true }), say))),
    ...MONGO,
  };
  say(`MongoDB: ${describeBackingService(mongo)}`);

  // The launcher reads the processes' JSON lines to know when each is ready, and prefixes them:
  // pretty logs (LOG_PRETTY, or a TTY) would hide those lines, so children always write JSON.
  const urls = { REDIS_URL: redis.url, MONGO_URL: mongo.url, LOG_PRETTY: '0' };
  // Orders are charged over HTTP through the payment sandbox (a fourth process), unless
  // PAYMENT_PROVIDER_URL names a provider already.
  let sandbox: RunningProcess | undefined;
  let paymentUrl = env.PAYMENT_PROVIDER_URL;
  if (!paymentUrl) {
    sandbox = supervisor.start({
      service: 'payment-sandbox',
      name: 'payments',
      env: { LOG_PRETTY: '0' },
      onLine: printer('payments'),
    });
    await supervisor.untilStop(sandbox.waitForLine(READY_LINE['payment-sandbox'], READY_TIMEOUT_MS));
    const port = portFromLogLine(sandbox.lines.find((l) => l.includes('payment sandbox listening on')));
    paymentUrl = `http://127.0.0.1:${port ?? 3002}`;
  }
  // Order events go to a receiver in this launcher (it verifies each with standardwebhooks and logs
  // it, labelled `hooks`), unless WEBHOOK_URL names one already.
  const hooks = await startDevReceiver(supervisor, env);
  const api = supervisor.start({ service: 'api', env: { ...urls, ...hooks }, onLine: printer('api') });
  // NODE_APP_INSTANCE as pm2 sets it: each worker serves metrics on WORKER_METRICS_PORT + its index.
  const workers = WORKERS.map((name, index) =>
    supervisor.start({
      service: 'worker',
      name,
      env: { ...urls, ...hooks, NODE_APP_INSTANCE: String(index), PAYMENT_PROVIDER_URL: paymentUrl },
      onLine: printer(name),
    }),
  );
  const health = supervisor.start({ service: 'health', env: urls, onLine: printer('health') });
  const ready = (proc: RunningProcess, pattern: RegExp) => proc.waitForLine(pattern, READY_TIMEOUT_MS);
  await supervisor.untilStop(
    Promise.all([
      ready(api, READY_LINE.api),
      ...workers.map((w) => ready(w, READY_LINE.worker)),
      ready(health, READY_LINE.health),
    ]),
  );

  const apiPort = portFromLogLine(api.lines.find((l) => l.includes('api listening on'))) ?? config.apiPort;
  const boardWanted =
    (config.bullBoardUser !== undefined && config.bullBoardPassword !== undefined) || config.boardAccounts.length > 0;
  const banner = formatBanner({
    apiPort,
    healthPort: portFromLogLine(health.lines.find((l) => l.includes('health listening on'))) ?? config.healthPort,
    workers: workers.map((w) => ({
      name: w.name,
      metricsPort: portFromLogLine(w.lines.find((l) => l.includes('worker metrics on'))) ?? null,
    })),
    bullBoard: !boardWanted
      ? 'off'
      : (await isServed(`http://127.0.0.1:${apiPort}/admin/queues`))
        ? 'served'
        : 'missing',
    redis,
    mongo,
    payments: sandbox ? `${paymentUrl}  (payment sandbox: GET /charges?orderId=, PUT /_settings)` : paymentUrl,
  });
  say(banner.join('\n'));
  if (hooks.WEBHOOK_URL) say(`  webhooks    ${hooks.WEBHOOK_URL}  (verified deliveries are logged as hooks)`);
  return [
    { service: 'api', proc: api },
    ...workers.map((proc) => ({ service: 'worker' as const, proc })),
    { service: 'health', proc: health },
    ...(sandbox ? [{ service: 'payment-sandbox' as const, proc: sandbox }] : []),
  ];
}

/**
 * The local webhook receiver (scripts/lib/webhook-receiver.ts) with a fresh secret, and the variables
 * that point the fleet at it; nothing when WEBHOOK_URL is set (the fleet reads it from the environment).
 */
async function startDevReceiver(supervisor: Supervisor, env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  if (env.WEBHOOK_URL) return {};
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const receiver = await supervisor.acquire(
    startWebhookReceiver({
      secret,
      onDelivery: (d) =>
        process.stdout.write(
          `${prefixer.formatLines(
            'hooks',
            d.event
              ? `verified ${d.event.type} ${d.event.data.id} (webhook-id ${d.webhookId})`
              : `REFUSED ${d.webhookId}: ${d.error}`,
          )}\n`,
        ),
    }).then((r) => ({ ...r, stop: r.close })),
  );
  return { WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: secret };
}

/**
 * Watch mode: `tsc --watch` (unless --no-tsc) rebuilds dist/ on save; each rebuild restarts the
 * processes whose files changed, one rebuild at a time.
 */
async function watchAndRestart(supervisor: Supervisor, fleet: FleetEntry[]): Promise<void> {
  // tsc's first pass in watch mode rewrites every file: changes count only after it.
  let compiled = !TSC;
  if (TSC) {
    const tsc = startProcess({
      name: 'tsc',
      script: join('node_modules', 'typescript', 'bin', 'tsc'),
      args: ['-p', 'tsconfig.json', '--watch', '--preserveWatchOutput', '--pretty', 'false'],
      env: {},
      onLine: (line) => {
        if (/error TS|Found \d+ errors?/.test(line)) printer('tsc')(line.replace(/^\[?[\d:]+( [AP]M)?\]? - /, ''));
        if (/Watching for file changes/.test(line)) compiled = true;
      },
    });
    await supervisor.acquire(Promise.resolve({ stop: async () => void (await tsc.stop('SIGTERM', 5000)) }));
  }
  let queue = Promise.resolve();
  const watcher = watchDist({
    distDir: join(REPO_ROOT, 'dist'),
    debounceMs: RESTART_DEBOUNCE_MS,
    paused: () => !compiled,
    onChange: (services, files) => {
      queue = queue.then(async () => {
        const targets = fleet.filter((entry) => services.has(entry.service));
        const shown = files.slice(0, 3).join(', ') + (files.length > 3 ? ` and ${files.length - 3} more` : '');
        say(`changed: ${shown}; restarting ${targets.map((e) => e.proc.name).join(', ')}`);
        await Promise.all(
          targets.map(async (entry) => {
            try {
              entry.proc = await supervisor.restart(entry.proc);
              await entry.proc.waitForLine(READY_LINE[entry.service], READY_TIMEOUT_MS);
              say(`${entry.proc.name} restarted (pid ${entry.proc.pid})`);
            } catch (err) {
              if (!(err instanceof StopRequested)) complain(`${entry.proc.name} did not restart: ${errorMessage(err)}`);
            }
          }),
        );
      });
    },
  });
  await supervisor.acquire(Promise.resolve({ stop: async () => watcher.close() }));
  say(`watching dist/${TSC ? ' (tsc --watch rebuilds it on save)' : ''}: a change restarts the processes that run it`);
}

async function main(): Promise<number> {
  const group = await runInOwnProcessGroup();
  if (group.role === 'relay') return group.exitCode;
  let config: Config;
  try {
    // Checked before anything starts: the processes would each stop on the same problem.
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    complain(`${err.message}\nFix the environment variables above (see README, "Configuration").`);
    return 78;
  }
  if (WATCH && (config.logPretty || process.stdout.isTTY === true)) pretty = prettyLogLine({ color: colour });
  const supervisor = createSupervisor({ stopTimeoutMs: config.shutdownTimeoutMs + 5000, say, keepGoing: WATCH });
  handleStopSignals(supervisor, {
    say,
    onSecondSignal: () => void supervisor.kill().finally(() => process.exit(130)),
  });
  process.on('uncaughtException', (err) => {
    complain(`launcher error: ${err.stack ?? err.message}`);
    void supervisor.kill().finally(() => process.exit(1));
  });

  try {
    const fleet = await startFleet(supervisor, config);
    if (WATCH) await watchAndRestart(supervisor, fleet);
  } catch (err) {
    if (!(err instanceof StopRequested)) {
      complain(errorMessage(err));
      supervisor.requestStop({ kind: 'failed', error: err });
    }
  }
  const reason = await supervisor.stopRequested;
  const stopped = await supervisor.shutdown();
  for (const { name, status } of stopped) say(`${name} exited with ${describeExit(status)}`);
  if (reason.kind === 'signal') {
    say('stopped');
    return 0;
  }
  complain(reason.kind === 'exited' ? `stopped because ${reason.name} exited` : 'stopped: could not start');
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`dev: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
