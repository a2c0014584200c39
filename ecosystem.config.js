// @ts-check
/**
 * pm2 process file: `npm run build`, then `npx pm2 start ecosystem.config.js [--env production]`.
 *
 * pm2 loads this file with require(); Node (>= 20.19, >= 22.12) can require an ES module and hands
 * pm2 its named exports, so `apps` is a named export (pm2 does not look at `default`).
 *
 * Every process reads its configuration from the environment pm2 starts it with: the shell's
 * environment (e.g. `set -a; . ./.env; set +a`), extended by `env` or `env_<stage>` below. Only the
 * launcher's own knobs are read here: API_INSTANCES, WORKER_INSTANCES and SHUTDOWN_TIMEOUT_MS (to keep
 * pm2's kill_timeout above the processes' own shutdown bound).
 */
import { fileURLToPath } from 'node:url';

/**
 * A non-negative integer from the environment, or `fallback`.
 * @param {string} name
 * @param {number} fallback
 */
function intFromEnv(name, fallback) {
  const value = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isInteger(value) && value >= 0 ? value : fallback;
}

/**
 * pm2's `instances`: a count, or `max` (one per CPU).
 * @param {string} name
 * @param {number} fallback
 * @returns {number | string}
 */
function instancesFromEnv(name, fallback) {
  return process.env[name] === 'max' ? 'max' : Math.max(1, intFromEnv(name, fallback));
}

// Same default as the config schema (common/config/config.ts).
const shutdownTimeoutMs = intFromEnv('SHUTDOWN_TIMEOUT_MS', 10_000);

const shared = {
  cwd: fileURLToPath(new URL('.', import.meta.url)),
  node_args: ['--enable-source-maps'],
  // Each process sends 'ready' (process.send) once it can serve; pm2 waits for it on start and,
  // for the cluster-mode api, before it stops the old instance on `pm2 reload`.
  wait_ready: true,
  listen_timeout: 30_000,
  // pm2 sends SIGINT, then SIGKILL after kill_timeout: leave the graceful shutdown (in-flight requests
  // and jobs, bounded by SHUTDOWN_TIMEOUT_MS) room to finish and close its connections.
  kill_timeout: shutdownTimeoutMs + 5_000 + 1_000, // + the api's drain (SHUTDOWN_DRAIN_MS, 1 s)
  max_memory_restart: '512M',
  // Crash loops back off exponentially (from 100 ms, times 1.5 per restart, capped by pm2 at 15 s) instead of spinning.
  exp_backoff_restart_delay: 100,
  // 78 (EX_CONFIG) is a bad environment: restarting cannot fix it.
  stop_exit_codes: [78],
  // pino writes JSON lines: no date prefix, one log file per app (not one per instance).
  time: false,
  merge_logs: true,
  env: { NODE_ENV: 'development' },
  env_production: { NODE_ENV: 'production' },
};

export const apps = [
  {
    ...shared,
    name: 'api',
    script: 'dist/api/main.js',
    // Cluster mode: the instances share API_PORT, and `pm2 reload api` replaces them one by one.
    exec_mode: 'cluster',
    instances: instancesFromEnv('API_INSTANCES', 2),
    // After SIGINT the old instance keeps answering (with `Connection: close`) for a second while
    // pm2's master moves new connections to the new instance: a reload drops no request.
    env: { ...shared.env, SHUTDOWN_DRAIN_MS: process.env.SHUTDOWN_DRAIN_MS ?? '1000' },
    env_production: { ...shared.env_production, SHUTDOWN_DRAIN_MS: process.env.SHUTDOWN_DRAIN_MS ?? '1000' },
  },
  {
    ...shared,
    name: 'worker',
    script: 'dist/worker/main.js',
    // Fork mode: workers listen on nothing shared. pm2 sets NODE_APP_INSTANCE (0, 1, …) per instance,
    // and each worker serves metrics on WORKER_METRICS_PORT + NODE_APP_INSTANCE.
    exec_mode: 'fork',
    instances: instancesFromEnv('WORKER_INSTANCES', 2),
  },
  {
    ...shared,
    name: 'health',
    script: 'dist/health/main.js',
    exec_mode: 'fork',
    instances: 1,
  },
];

export default { apps };
