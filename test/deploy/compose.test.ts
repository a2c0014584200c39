import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { parse } from 'yaml';
import { loadConfig } from '#common';
import { REPO_ROOT } from '../../scripts/lib/process-runner.js';
import { defaults, envFileEntries, repoFile, schemaNames } from './contract.js';

/**
 * docker-compose.yml, .env.example, the Dockerfile and the image's health check, checked against the
 * code's contract. No Docker engine is needed (none runs in CI).
 */

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  profiles?: string[];
  restart?: string;
  ports?: string[];
  expose?: string[];
  environment?: Record<string, string>;
  env_file?: Array<string | { path: string; required?: boolean }>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  volumes?: string[];
}

interface Compose {
  services: Record<string, ComposeService>;
}

const APPS = ['api', 'worker', 'health'] as const;

async function compose(): Promise<Compose> {
  // merge: compose files use YAML merge keys (`<<: *app`) for what the three app services share.
  return parse(await repoFile('docker-compose.yml'), { merge: true }) as Compose;
}

/**
 * A compose value with `${NAME:-default}` / `${NAME}` resolved as on a machine with no .env: what
 * `docker compose up` runs with out of the box. The names it reads are returned too.
 */
function interpolate(value: string): { value: string; names: string[] } {
  const names: string[] = [];
  const resolved = value.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g,
    (_, name: string, fallback?: string) => {
      names.push(name);
      return fallback ?? '';
    },
  );
  return { value: resolved, names };
}

/** Seconds of a compose duration such as `20s` or `1m30s`. */
function seconds(duration: string): number {
  let total = 0;
  for (const [, n, unit] of duration.matchAll(/(\d+)(ms|s|m|h)/g)) {
    total += Number(n) * { ms: 0.001, s: 1, m: 60, h: 3600 }[unit as 'ms' | 's' | 'm' | 'h'];
  }
  return total;
}

test('when docker-compose.yml is read, then it runs mongo, redis, api, worker and health, and prometheus, grafana and pyroscope only on request', async (t) => {
  const { services } = await compose();
  t.deepEqual(Object.keys(services).sort(), [
    'api',
    'grafana',
    'health',
    'mongo',
    'prometheus',
    'pyroscope',
    'redis',
    'worker',
  ]);
  t.regex(services.mongo.image ?? '', /^mongo:7(\.|$)/);
  t.regex(services.redis.image ?? '', /^redis:7(\.|$)/);
  t.deepEqual(services.prometheus.profiles, ['observability']);
  t.deepEqual(services.grafana.profiles, ['observability']);
  t.deepEqual(services.pyroscope.profiles, ['observability']);
  for (const name of ['mongo', 'redis', ...APPS]) t.is(services[name].profiles, undefined, `${name} always runs`);
  for (const name of Object.keys(services)) t.truthy(services[name].restart, `${name} has a restart policy`);
});

test('when the app services start, then each runs its compiled entry point from one image', async (t) => {
  const { services } = await compose();
  const images = new Set(APPS.map((name) => services[name].image));
  t.is(images.size, 1, 'api, worker and health share one image');
  for (const name of APPS) {
    const command = services[name].command ?? [];
    t.is(command[0], 'node');
    t.is(command.at(-1), `dist/${name}/main.js`);
    t.true(existsSync(join(REPO_ROOT, `dist/${name}/main.js`)), `dist/${name}/main.js is built`);
  }
});

test('when ports are published, then they are the ports the code listens on, and workers publish none', async (t) => {
  const { services } = await compose();
  const config = defaults();
  t.is(config.apiPort, 3000);
  t.is(config.healthPort, 3001);
  t.deepEqual(services.api.ports, [`${config.apiPort}:${config.apiPort}`]);
  t.is(services.api.environment?.API_PORT, String(config.apiPort));
  t.deepEqual(services.health.ports, [`${config.healthPort}:${config.healthPort}`]);
  t.is(services.health.environment?.HEALTH_PORT, String(config.healthPort));
  // `--scale worker=N` cannot bind one host port N times.
  t.is(services.worker.ports, undefined);
  t.is(services.worker.environment?.WORKER_METRICS_PORT, String(config.workerMetricsPort));
  t.deepEqual(services.worker.expose, [String(config.workerMetricsPort)]);
});

test('when Prometheus runs, then it scrapes every process on its metrics port', async (t) => {
  const { services } = await compose();
  t.true(
    (services.prometheus.volumes ?? []).some((v) => v.startsWith('./deploy/prometheus/prometheus.yml:')),
    'prometheus.yml is mounted',
  );
  const config = defaults();
  const prometheus = parse(await repoFile('deploy/prometheus/prometheus.yml')) as {
    scrape_configs: Array<{
      job_name: string;
      metrics_path?: string;
      static_configs?: Array<{ targets: string[] }>;
      dns_sd_configs?: Array<{ names: string[]; port: number }>;
    }>;
  };
  const targets = (job: string) => {
    const scrape = prometheus.scrape_configs.find((s) => s.job_name === job);
    if (!scrape) return [];
    t.is(scrape.metrics_path ?? '/metrics', '/metrics');
    return [
      ...(scrape.static_configs ?? []).flatMap((s) => s.targets),
      ...(scrape.dns_sd_configs ?? []).flatMap((d) => d.names.map((n) => `${n}:${d.port}`)),
    ];
  };
  t.deepEqual(targets('api'), [`api:${config.apiPort}`]);
  t.deepEqual(targets('worker'), [`worker:${config.workerMetricsPort}`]);
  t.deepEqual(targets('health'), [`health:${config.healthPort}`]);
});

test('when the observability profile runs, then Grafana has a Pyroscope data source on the compose service, and no process pushes profiles unless told', async (t) => {
  const { services } = await compose();
  t.regex(services.pyroscope.image ?? '', /^grafana\/pyroscope:\d+\.\d+\.\d+$/, 'a pinned release');
  t.deepEqual(services.pyroscope.ports, ['4040:4040']);
  t.true(Object.keys(services.grafana.depends_on ?? {}).includes('pyroscope'), 'grafana starts after pyroscope');
  const provisioned = parse(await repoFile('deploy/grafana/provisioning/datasources/pyroscope.yml')) as {
    datasources: Array<{ uid: string; type: string; url: string }>;
  };
  t.deepEqual(
    provisioned.datasources.map((d) => [d.uid, d.type, d.url]),
    [['pyroscope', 'grafana-pyroscope-datasource', 'http://pyroscope:4040']],
  );
  // Continuous profiling is opt-in (.env): out of the box no app process has an address to push to.
  for (const name of APPS) t.is(services[name].environment?.PYROSCOPE_SERVER_ADDRESS, undefined, name);
});

test('when compose or .env.example name a variable, then the config schema knows it and accepts the value', async (t) => {
  const names = await schemaNames();
  const { services } = await compose();
  for (const name of APPS) {
    const environment: Record<string, string> = {};
    for (const [key, raw] of Object.entries(services[name].environment ?? {})) {
      const { value, names: read } = interpolate(raw);
      environment[key] = value;
      for (const n of [key, ...read]) t.true(names.has(n), `${name}: ${n} is not in the config schema`);
    }
    // Out of the box (no .env), the environment starts every process.
    t.notThrows(() => loadConfig(environment), `${name}: its environment passes loadConfig`);
  }

  const example = envFileEntries(await repoFile('.env.example'));
  t.true(example.size > 0);
  for (const key of example.keys()) t.true(names.has(key), `.env.example: ${key} is not in the config schema`);
  t.notThrows(() => loadConfig(Object.fromEntries(example)), '.env.example passes loadConfig');
  // Every variable is documented there, but pm2's own instance number.
  const missing = [...names].filter((n) => n !== 'NODE_APP_INSTANCE' && !example.has(n));
  t.deepEqual(missing, [], '.env.example documents every variable of the schema');
  // No secret is committed.
  t.is(example.get('BULL_BOARD_PASSWORD') ?? '', '');
});

test('when the app services start, then they wait for healthy backing services and read .env', async (t) => {
  const { services } = await compose();
  for (const name of ['mongo', 'redis']) {
    t.true((services[name].healthcheck?.test ?? []).length > 1, `${name} has a healthcheck`);
  }
  for (const name of APPS) {
    const service = services[name];
    t.deepEqual(
      service.depends_on,
      { mongo: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } },
      `${name} depends on healthy mongo and redis`,
    );
    const envFiles = (service.env_file ?? []).map((f) => (typeof f === 'string' ? f : f.path));
    t.deepEqual(envFiles, ['.env'], `${name} reads .env`);
    t.deepEqual(service.healthcheck?.test, ['CMD', 'node', 'dist/scripts/healthcheck.js', name]);
    // pm2-free containers stop on SIGTERM: the grace period must cover the graceful shutdown.
    t.true(
      seconds(service.stop_grace_period ?? '10s') * 1000 > defaults().shutdownTimeoutMs,
      `${name}: stop_grace_period exceeds SHUTDOWN_TIMEOUT_MS`,
    );
  }
});

test('when redis starts, then it keeps BullMQ keys (noeviction) and persists them (appendonly)', async (t) => {
  const { services } = await compose();
  const command = (services.redis.command ?? []).join(' ');
  t.regex(command, /--maxmemory-policy noeviction\b/);
  t.regex(command, /--appendonly yes\b/);
  t.true(
    (services.redis.volumes ?? []).some((v) => v.endsWith(':/data')),
    'the append-only file is on a volume',
  );
});

test('when the Dockerfile is read, then it builds in stages and runs production-only, non-root, with a health check', async (t) => {
  const dockerfile = await repoFile('Dockerfile');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const froms = instructions.filter((l) => /^FROM /i.test(l));
  t.true(froms.length >= 2, 'multi-stage');
  const runtimeStart = instructions.lastIndexOf(froms.at(-1)!);
  const runtime = instructions.slice(runtimeStart);
  t.regex(runtime[0], /^FROM node:24[-.\w]*(-slim|-alpine)/);
  t.true(
    instructions.some((l) => /^RUN npm ci\b.*--omit=dev/.test(l)),
    'production dependencies by npm ci --omit=dev',
  );
  t.true(runtime.includes('ENV NODE_ENV=production'));
  const user = runtime.find((l) => l.startsWith('USER '));
  t.truthy(user);
  t.notRegex(user!, /^USER (root|0)(:|$)/);
  t.true(
    runtime.some((l) => l.startsWith('HEALTHCHECK ') && l.includes('dist/scripts/healthcheck.js')),
    'HEALTHCHECK runs the health-check script',
  );
  // Exec form: node is PID 1 and receives SIGTERM itself (no shell in between).
  t.deepEqual(JSON.parse(runtime.find((l) => l.startsWith('CMD '))!.slice(4)), [
    'node',
    '--enable-source-maps',
    'dist/api/main.js',
  ]);
  // What the build copies from the context exists and is not excluded by .dockerignore.
  const ignored = (await repoFile('.dockerignore'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('!'));
  for (const line of instructions.filter((l) => /^COPY (?!--from)/.test(l))) {
    const sources = line.split(/\s+/).slice(1, -1);
    for (const source of sources) {
      t.true(existsSync(join(REPO_ROOT, source)), `${source} exists`);
      t.false(ignored.includes(source), `${source} is not in .dockerignore`);
    }
  }
});

// --- the image's HEALTHCHECK script, run for real against stand-in servers ------------------------

const run = promisify(execFile);

async function healthcheck(service: string, env: Record<string, string>): Promise<number> {
  try {
    await run(process.execPath, [join(REPO_ROOT, 'dist/scripts/healthcheck.js'), service], {
      env: { PATH: process.env.PATH, ...env },
      timeout: 15_000,
    });
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

async function stubServer(status: number, path: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    res.writeHead(req.url === path ? status : 404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

test('when a process answers its live endpoint, then the image health check passes, and fails when it does not', async (t) => {
  const live = await stubServer(200, '/health/live');
  const down = await stubServer(503, '/health/live');
  const metrics = await stubServer(200, '/metrics');
  try {
    t.is(await healthcheck('api', { API_PORT: String(live.port) }), 0);
    t.is(await healthcheck('health', { HEALTH_PORT: String(live.port) }), 0);
    t.is(await healthcheck('api', { API_PORT: String(down.port) }), 1);
    t.is(await healthcheck('worker', { WORKER_METRICS_PORT: String(metrics.port) }), 0);
    t.is(await healthcheck('worker', { WORKER_METRICS_PORT: String(live.port) }), 1, '404 on /metrics');
    t.is(await healthcheck('worker', { WORKER_METRICS_PORT: '0' }), 0, 'metrics off: nothing to ask');
  } finally {
    for (const s of [live, down, metrics]) s.server.close();
  }
  const closed = await stubServer(200, '/health/live');
  await new Promise((resolve) => closed.server.close(resolve));
  t.is(await healthcheck('health', { HEALTH_PORT: String(closed.port) }), 1, 'nothing listening');
});
