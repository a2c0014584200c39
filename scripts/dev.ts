/**
 * Local launcher (`npm start`, `npm run dev`): the api, two workers and the health process, over
 * REDIS_URL/MONGO_URL when set (they must answer), else over an embedded redis-server and mongod.
 * Ctrl-C or SIGTERM stops everything gracefully; a second one kills at once.
 */
import { ConfigError, loadConfig, type Config } from '#common';
import { describeBackingService, formatBanner, isServed, portFromLogLine } from './lib/banner.js';
import { resolveMongo, resolveRedis } from './lib/embedded-services.js';
import { withWarningsAsCauses } from './lib/library-warnings.js';
import { colourWanted, createPrefixer } from './lib/prefix.js';
import { runInOwnProcessGroup } from './lib/process-group.js';
import type { RunningProcess } from './lib/process-runner.js';
import {
  createSupervisor,
  describeExit,
  errorMessage,
  handleStopSignals,
  StopRequested,
  type Supervisor,
} from './lib/supervisor.js';

const WORKERS = ['worker-1', 'worker-2'];
const READY_TIMEOUT_MS = 60_000;
const DATABASE = 'orders';
const REDIS = { variable: 'REDIS_URL', program: 'redis-server' };
const MONGO = { variable: 'MONGO_URL', program: 'mongod' };
// The launcher's own lines are labelled `dev`.
const prefixer = createPrefixer(['api', ...WORKERS, 'health', 'dev'], {
  color: colourWanted(process.stdout, process.env),
});
const say = (text: string) => process.stdout.write(`${prefixer.formatLines('dev', text)}\n`);
const complain = (text: string) => process.stderr.write(`${prefixer.formatLines('dev', text)}\n`);
const printer = (name: string) => (line: string) => process.stdout.write(`${prefixer.format(name, line)}\n`);

async function startFleet(supervisor: Supervisor, config: Config): Promise<void> {
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
  const api = supervisor.start({ service: 'api', env: urls, onLine: printer('api') });
  // NODE_APP_INSTANCE as pm2 sets it: each worker serves metrics on WORKER_METRICS_PORT + its index.
  const workers = WORKERS.map((name, index) =>
    supervisor.start({
      service: 'worker',
      name,
      env: { ...urls, NODE_APP_INSTANCE: String(index) },
      onLine: printer(name),
    }),
  );
  const health = supervisor.start({ service: 'health', env: urls, onLine: printer('health') });
  const ready = (proc: RunningProcess, pattern: RegExp) => proc.waitForLine(pattern, READY_TIMEOUT_MS);
  await supervisor.untilStop(
    Promise.all([
      ready(api, /MongoDB connected, indexes in place/),
      ...workers.map((w) => ready(w, /"msg":"worker running"/)),
      ready(health, /health listening on/),
    ]),
  );

  const apiPort = portFromLogLine(api.lines.find((l) => l.includes('api listening on'))) ?? config.apiPort;
  const boardWanted = config.bullBoardUser !== undefined && config.bullBoardPassword !== undefined;
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
  });
  say(banner.join('\n'));
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
  const supervisor = createSupervisor({ stopTimeoutMs: config.shutdownTimeoutMs + 5000, say });
  handleStopSignals(supervisor, {
    say,
    onSecondSignal: () => void supervisor.kill().finally(() => process.exit(130)),
  });
  process.on('uncaughtException', (err) => {
    complain(`launcher error: ${err.stack ?? err.message}`);
    void supervisor.kill().finally(() => process.exit(1));
  });

  try {
    await startFleet(supervisor, config);
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
