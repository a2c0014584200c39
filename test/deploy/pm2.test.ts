import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import test from 'ava';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { ORDERS_QUEUE } from '#common';
import { freePort } from '../../scripts/lib/embedded-services.js';
import { REPO_ROOT } from '../../scripts/lib/process-runner.js';
import { testServices, uniqueName } from '../helpers/services.js';

/**
 * The real pm2 from the lock file runs ecosystem.config.js against real MongoDB and Redis, with its own
 * PM2_HOME (its own daemon), database, queue prefix and ports. The tests run in order on one fleet.
 */

const PM2_BIN = join(REPO_ROOT, 'node_modules', '.bin', 'pm2');
const run = promisify(execFile);

interface Pm2Process {
  readonly name: string;
  readonly pid: number;
  readonly pm_id: number;
  readonly pm2_env: {
    readonly status: string;
    readonly exec_mode: string;
    readonly restart_time: number;
    readonly NODE_APP_INSTANCE?: number;
  };
}

interface OrderBody {
  readonly id: string;
  readonly status: string;
  readonly attempts: number;
  readonly processedAt: string | null;
}

interface Fleet {
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;
  readonly apiUrl: string;
  readonly healthUrl: string;
  readonly metricsPort: number;
  readonly mongoUrl: string;
  readonly redis: Redis;
  readonly queue: Queue;
}

let fleet: Fleet | undefined;
let daemonKilled = false;

function current(): Fleet {
  if (!fleet) throw new Error('the fleet did not start (see the before hook)');
  return fleet;
}

async function pm2(args: string[], timeoutMs = 90_000): Promise<string> {
  const { env } = current();
  try {
    const { stdout } = await run(PM2_BIN, args, {
      cwd: REPO_ROOT,
      env,
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`pm2 ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

async function jlist(): Promise<Pm2Process[]> {
  const out = await pm2(['jlist'], 30_000);
  // Anything pm2 prints before the JSON (a warning, a banner) is not ours to parse.
  return JSON.parse(out.slice(out.indexOf('['))) as Pm2Process[];
}

/** A free port whose successor is free too: the two workers serve metrics on base and base + 1. */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 20; i += 1) {
    const base = await freePort();
    const nextFree = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(base + 1, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (nextFree) return base;
  }
  throw new Error('no two consecutive free ports found');
}

/** Alive and not a zombie: a reaped-late child of an exited daemon is dead for our purpose. */
async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return true; // no procfs: kill(0) is all we know
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

async function httpStatus(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  return res.status;
}

const ORDER = {
  customerId: 'c-pm2',
  items: [{ sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 }],
  currency: 'EUR',
};

async function postOrder(signal?: AbortSignal): Promise<{ status: number; id?: string }> {
  const res = await fetch(`${current().apiUrl}/orders`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(ORDER),
    signal: signal ?? AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as Partial<OrderBody>;
  return { status: res.status, id: body.id };
}

async function getOrder(id: string): Promise<OrderBody> {
  const res = await fetch(`${current().apiUrl}/orders/${id}`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`GET /orders/${id} answered ${res.status}`);
  return (await res.json()) as OrderBody;
}

/** Resolves with the orders once every one of them is PROCESSED. */
async function allProcessed(ids: readonly string[], timeoutMs: number): Promise<OrderBody[]> {
  return waitFor(
    `${ids.length} orders to be PROCESSED`,
    async () => {
      const orders: OrderBody[] = [];
      for (const id of ids) orders.push(await getOrder(id));
      return orders.every((o) => o.status === 'PROCESSED') ? orders : undefined;
    },
    timeoutMs,
    500,
  );
}

async function queueIdle(timeoutMs: number): Promise<void> {
  const { queue } = current();
  await waitFor(
    'the queue to drain',
    async () => {
      const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
      return c.wait + c.active + c.delayed + c.prioritized === 0 ? true : undefined;
    },
    timeoutMs,
    500,
  );
}

/** The JSON lines of one app's merged pm2 log (PM2_HOME/logs/<app>-out.log). */
async function logLines(app: string): Promise<string[]> {
  const text = await readFile(join(current().home, 'logs', `${app}-out.log`), 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.trim() !== '');
}

test.before(async () => {
  const services = await testServices();
  const name = uniqueName('pm2');
  const home = await mkdtemp(join(tmpdir(), 'pm2-home-'));
  // pm2 reports a first run from a new home to its vendor (the 'touch' file marks it done): not from tests.
  await writeFile(join(home, 'touch'), String(Date.now()));
  const [apiPort, healthPort, metricsPort] = [await freePort(), await freePort(), await freePortPair()];
  const mongoUrl = services.mongoUrl(name);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PM2_HOME: home,
    PM2_DISABLE_VERSION_CHECK: 'true',
    MONGO_URL: mongoUrl,
    REDIS_URL: services.redisUrl,
    QUEUE_PREFIX: name,
    API_PORT: String(apiPort),
    HEALTH_PORT: String(healthPort),
    WORKER_METRICS_PORT: String(metricsPort),
    API_INSTANCES: '2',
    WORKER_INSTANCES: '2',
    PROCESSING_DELAY_MS: '300',
    SHUTDOWN_TIMEOUT_MS: '10000',
    LOG_LEVEL: 'info',
    // The reload test sends a steady stream from one client: it measures reloads, not the limiter.
    RATE_LIMIT_PER_MINUTE: '0',
  };
  const redis = new Redis(services.redisUrl, { maxRetriesPerRequest: 1 });
  const queue = new Queue(ORDERS_QUEUE, { connection: redis, prefix: name });
  fleet = {
    home,
    env,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    healthUrl: `http://127.0.0.1:${healthPort}`,
    metricsPort,
    mongoUrl,
    redis,
    queue,
  };
  await pm2(['start', 'ecosystem.config.js'], 120_000);
});

test.after.always(async () => {
  if (!fleet) return;
  if (!daemonKilled) await pm2(['kill'], 60_000).catch(() => undefined);
  await fleet.queue.obliterate({ force: true }).catch(() => undefined);
  await fleet.queue.close().catch(() => undefined);
  fleet.redis.disconnect();
  const mongo = mongoose.createConnection(fleet.mongoUrl, { serverSelectionTimeoutMS: 3000 });
  await mongo
    .asPromise()
    .then((c) => c.dropDatabase())
    .catch(() => undefined);
  await mongo.close().catch(() => undefined);
  // PM2_TEST_KEEP_HOME=1 keeps pm2's logs (PM2_HOME/pm2.log, PM2_HOME/logs/) to look at after a failure.
  if (process.env.PM2_TEST_KEEP_HOME) console.log(`pm2 home kept: ${fleet.home}`);
  else await rm(fleet.home, { recursive: true, force: true });
});

test.serial('when the ecosystem is started, then every app is online and ready to serve', async (t) => {
  const list = await jlist();
  const count = (name: string) => list.filter((p) => p.name === name).length;
  t.is(count('api'), 2);
  t.is(count('worker'), 2);
  t.is(count('health'), 1);
  for (const p of list) t.is(p.pm2_env.status, 'online', `${p.name}:${p.pm_id}`);
  t.true(
    list.filter((p) => p.name === 'api').every((p) => p.pm2_env.exec_mode === 'cluster_mode'),
    'the api runs in cluster mode',
  );
  t.deepEqual(
    list
      .filter((p) => p.name === 'worker')
      .map((p) => Number(p.pm2_env.NODE_APP_INSTANCE))
      .sort(),
    [0, 1],
  );

  const { apiUrl, healthUrl, metricsPort } = current();
  t.is(await httpStatus(`${apiUrl}/health/ready`), 200);
  t.is(
    await waitFor(
      'health readiness',
      async () => ((await httpStatus(`${healthUrl}/health/ready`)) === 200 ? 200 : undefined),
      15_000,
    ),
    200,
  );
  // Each worker instance serves metrics on its own port: WORKER_METRICS_PORT + NODE_APP_INSTANCE.
  t.is(await httpStatus(`http://127.0.0.1:${metricsPort}/metrics`), 200);
  t.is(await httpStatus(`http://127.0.0.1:${metricsPort + 1}/metrics`), 200);
});

test.serial('when orders are posted, then the pm2 workers process them', async (t) => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i += 1) {
    const { status, id } = await postOrder();
    t.is(status, 201);
    ids.push(id!);
  }
  const orders = await allProcessed(ids, 30_000);
  t.true(orders.every((o) => o.status === 'PROCESSED'));
});

test.serial('when forked processes log, then pm2 writes their pino JSON lines unprefixed', async (t) => {
  for (const app of ['worker', 'health']) {
    const lines = await logLines(app);
    t.true(lines.length > 0, `${app} logged nothing to its pm2 log`);
    for (const line of lines) {
      const entry = JSON.parse(line) as { service?: string };
      t.is(entry.service, app, line);
    }
  }
});

test.serial('when the api runs in cluster mode, then its pino lines reach its pm2 log', async (t) => {
  // pm2 captures a cluster worker's output through process.stdout; a logger writing to fd 1 directly
  // bypasses it and its lines land in the daemon's own log (PM2_HOME/pm2.log) instead.
  const lines = await logLines('api');
  t.true(
    lines.some((l) => l.includes('"msg":"api listening')),
    `no api line in api-out.log (${lines.length} lines); pm2.log has the api's lines: ${(await readFile(join(current().home, 'pm2.log'), 'utf8')).includes('"service":"api"')}`,
  );
  for (const line of lines) t.notThrows(() => JSON.parse(line), line);
});

test.serial('when the api is reloaded under a steady stream of requests, then no request fails', async (t) => {
  const before = (await jlist()).filter((p) => p.name === 'api').map((p) => p.pid);
  const stop = new AbortController();
  const failures: string[] = [];
  let sent = 0;
  const MAX_REQUESTS = 3000;
  let reloadStarted = Date.now();
  const client = async () => {
    while (!stop.signal.aborted && sent < MAX_REQUESTS) {
      sent += 1;
      const startedAt = Date.now();
      // Relative to the reload command, so a failure can be placed against pm2.log's timeline.
      const when = () => `at ${startedAt - reloadStarted} ms`;
      try {
        const res = await fetch(`${current().apiUrl}/orders`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(ORDER),
          signal: AbortSignal.timeout(10_000),
        });
        const text = await res.text();
        if (res.status !== 201 && res.status !== 202)
          failures.push(`HTTP ${res.status} ${when()}: ${text.slice(0, 160)}`);
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        failures.push(`${(err as Error).message} (${cause?.code ?? cause?.message ?? 'no cause'}) ${when()}`);
      }
      await sleep(20);
    }
  };
  const clients = Promise.all(Array.from({ length: 4 }, () => client()));
  await sleep(500); // the stream runs before, during and after the reload
  reloadStarted = Date.now();
  await pm2(['reload', 'api'], 120_000);
  const reloadMs = Date.now() - reloadStarted;
  await sleep(1000);
  stop.abort();
  await clients;

  const after = (await jlist()).filter((p) => p.name === 'api');
  t.log(`reload api took ${reloadMs} ms; ${sent} requests sent, ${failures.length} failed`);
  t.is(after.length, 2);
  t.true(
    after.every((p) => !before.includes(p.pid) && p.pm2_env.status === 'online'),
    'both api instances were replaced',
  );
  t.true(sent >= 50, `only ${sent} requests were sent`);
  t.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
});

test.serial('when the workers are reloaded while jobs run, then no job is lost or left stalled', async (t) => {
  await queueIdle(90_000);
  const { queue } = current();
  const ids: string[] = [];
  for (let batch = 0; batch < 5; batch += 1) {
    const results = await Promise.all(Array.from({ length: 10 }, () => postOrder()));
    for (const { status, id } of results) {
      t.is(status, 201);
      ids.push(id!);
    }
  }
  await waitFor('a job to be active', async () => ((await queue.getActiveCount()) > 0 ? true : undefined), 10_000, 50);

  const before = (await jlist()).filter((p) => p.name === 'worker').map((p) => p.pid);
  const reloadStarted = Date.now();
  await pm2(['reload', 'worker'], 120_000);
  t.log(`reload worker took ${Date.now() - reloadStarted} ms`);

  const orders = await allProcessed(ids, 90_000);
  // One attempt each: every job active at the reload finished before its worker exited, none stalled.
  t.deepEqual(
    orders.filter((o) => o.attempts !== 1).map((o) => `${o.id}: ${o.attempts} attempts`),
    [],
  );
  const counts = await queue.getJobCounts('active', 'wait', 'delayed', 'failed');
  t.deepEqual(counts, { active: 0, wait: 0, delayed: 0, failed: 0 });

  const after = (await jlist()).filter((p) => p.name === 'worker');
  t.is(after.length, 2);
  t.true(
    after.every((p) => !before.includes(p.pid) && p.pm2_env.status === 'online'),
    'both workers were replaced',
  );
  const stopped = (await logLines('worker'))
    .map((l) => JSON.parse(l) as { pid?: number; msg?: string; allJobsFinished?: boolean })
    .filter((e) => e.msg === 'worker stopped' && before.includes(e.pid ?? -1));
  t.is(stopped.length, 2, 'each old worker logged its shutdown');
  t.true(
    stopped.every((e) => e.allJobsFinished === true),
    'each old worker finished its jobs',
  );
});

test.serial('when every app is deleted and the daemon killed, then no process is left behind', async (t) => {
  const { home } = current();
  const pids = (await jlist()).map((p) => p.pid);
  const daemonPid = Number(await readFile(join(home, 'pm2.pid'), 'utf8'));
  t.true(pids.length === 5 && pids.every((pid) => pid > 0));

  await pm2(['delete', 'all'], 60_000);
  t.deepEqual(await jlist(), []);
  const alive = async () => {
    const found: number[] = [];
    for (const pid of pids) if (await isAlive(pid)) found.push(pid);
    return found;
  };
  await waitFor('the apps to exit', async () => ((await alive()).length === 0 ? true : undefined), 20_000).catch(
    () => undefined,
  );
  t.deepEqual(await alive(), [], 'app processes still running');

  await pm2(['kill'], 60_000);
  daemonKilled = true;
  await waitFor('the daemon to exit', async () => ((await isAlive(daemonPid)) ? undefined : true), 10_000).catch(
    () => undefined,
  );
  t.false(await isAlive(daemonPid), `pm2 daemon ${daemonPid} still runs`);
});
