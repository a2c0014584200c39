import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import type { EffectDocument, OrderDocument, OrderView } from '#common';
import { REPO_ROOT, type ServiceName } from '../../scripts/lib/process-runner.js';
import {
  countBy,
  createOrders,
  listAllOrders,
  logEntries,
  orderBody,
  requestJson,
  startTestFleet,
  waitFor,
  stopAndExpectCleanExit,
} from '../helpers/fleet.js';
import { transitionsOf } from '../helpers/orders.js';
import { freePort, spawnRedisServer } from '../../scripts/lib/embedded-services.js';
import { HAND_BACK_MS, SHUTDOWN_SLACK_MS } from '../../worker/settings.js';

/** What a stop may take past SHUTDOWN_TIMEOUT_MS on a busy two-core machine (closing connections, exit). */
const MARGIN_MS = 3000;

const sorted = (values: Iterable<string>) => [...values].sort();

test.serial(
  'when a worker gets SIGTERM mid-batch, then its active jobs finish, it exits 0 and the rest wait for the next worker',
  async (t) => {
    const shutdownTimeoutMs = 6000;
    const fleet = await startTestFleet(t, {
      label: 'e2e_stop_worker',
      workers: 1,
      health: false,
      env: {
        PROCESSING_DELAY_MS: '1500',
        WORKER_CONCURRENCY: '4',
        SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
      },
    });
    const [worker] = fleet.workers;
    const created = await createOrders(fleet.apiUrl, 10, 10);
    const ids = new Set(created.map((o) => o.id));
    await waitFor('an order in PROCESSING', async () =>
      (await listAllOrders(fleet.apiUrl, { status: 'PROCESSING' })).length > 0 ? true : undefined,
    );

    const signalled = performance.now();
    const exit = await worker.stop('SIGTERM', 30_000);
    const stopMs = performance.now() - signalled;

    t.deepEqual(exit, { code: 0, signal: null });
    t.true(stopMs < shutdownTimeoutMs + MARGIN_MS, `stopped in ${Math.round(stopMs)} ms`);
    t.deepEqual(
      logEntries(worker, 'worker stopped').map((e) => e.allJobsFinished),
      [true],
      'the worker reports that every active job finished',
    );
    const done = logEntries(worker, 'job done').map((e) => e.orderId as string);
    t.true(done.length > 0 && done.length < 10, `some but not all jobs done before the stop (${done.length})`);

    // Jobs it finished are PROCESSED; none is left PROCESSING; the others are PENDING and still queued.
    const orders = await listAllOrders(fleet.apiUrl);
    const processed = orders.filter((o) => o.status === 'PROCESSED').map((o) => o.id);
    t.deepEqual(sorted(processed), sorted(done), 'exactly the jobs it finished are PROCESSED');
    t.deepEqual(
      countBy(orders, (o) => o.status),
      { PROCESSED: done.length, PENDING: 10 - done.length },
    );
    const queue = fleet.queue();
    const counts = await queue.getJobCounts('active', 'waiting', 'completed');
    t.deepEqual(counts, { active: 0, waiting: 10 - done.length, completed: done.length });

    // Nothing was lost: a new worker finishes the rest, each order with one effect.
    const next = await fleet.addWorker();
    await waitFor('every order PROCESSED', async () => {
      const all = await listAllOrders(fleet.apiUrl, { status: 'PROCESSED' });
      return all.length === 10 ? true : undefined;
    });
    const db = await fleet.db();
    const effects = await db.collection<EffectDocument>('order_effects').find({}).toArray();
    t.deepEqual(sorted(effects.map((e) => e._id)), sorted(ids));
    t.deepEqual(
      sorted([...done, ...logEntries(next, 'job done').map((e) => e.orderId as string)]),
      sorted(ids),
      'each order done once, by one of the two workers',
    );

    await stopAndExpectCleanExit(t, fleet);
    t.is(await queue.getActiveCount(), 0);
  },
);

test.serial(
  'when a worker cannot finish its jobs within SHUTDOWN_TIMEOUT_MS, then it exits 0 on time, hands them back and another worker completes them once',
  async (t) => {
    const shutdownTimeoutMs = 500;
    const fleet = await startTestFleet(t, {
      label: 'e2e_stop_forced',
      workers: 1,
      health: false,
      env: { PROCESSING_DELAY_MS: '5000', WORKER_CONCURRENCY: '2', SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs) },
    });
    const [worker] = fleet.workers;
    const created = await createOrders(fleet.apiUrl, 2, 2);
    await waitFor('both orders PROCESSING', async () =>
      (await listAllOrders(fleet.apiUrl, { status: 'PROCESSING' })).length === 2 ? true : undefined,
    );

    const signalled = performance.now();
    const exit = await worker.stop('SIGTERM', 30_000);
    const stopMs = performance.now() - signalled;
    t.deepEqual(exit, { code: 0, signal: null });
    t.true(stopMs < shutdownTimeoutMs + MARGIN_MS, `stopped in ${Math.round(stopMs)} ms`);
    t.deepEqual(
      logEntries(worker, 'worker stopped').map((e) => e.allJobsFinished),
      [false],
    );
    t.deepEqual(logEntries(worker, 'job done'), [], 'no job finished');

    // The unfinished jobs are back in the wait list at once (no lock to expire); the orders stay
    // PROCESSING for the next claim to take over.
    const queue = fleet.queue();
    t.deepEqual(await queue.getJobCounts('active', 'waiting'), { active: 0, waiting: 2 });
    t.deepEqual(
      countBy(await listAllOrders(fleet.apiUrl), (o) => o.status),
      { PROCESSING: 2 },
    );

    const next = await fleet.addWorker({ PROCESSING_DELAY_MS: '50' });
    const orders = await waitFor('both orders PROCESSED by the next worker', async () => {
      const all = await listAllOrders(fleet.apiUrl, { status: 'PROCESSED' });
      return all.length === 2 ? all : undefined;
    });
    t.deepEqual(sorted(orders.map((o) => o.id)), sorted(created.map((o) => o.id)));
    for (const order of orders) {
      t.is(order.attempts, 2, `${order.id}: the abandoned claim and the reclaim`);
      t.deepEqual(
        transitionsOf(order.history).map((h) => h.status),
        ['PENDING', 'PROCESSING', 'PROCESSING', 'PROCESSED'],
        `${order.id} history`,
      );
    }
    t.is(logEntries(next, 'job done').length, 2);
    const db = await fleet.db();
    t.is(await db.collection('order_effects').countDocuments(), 2, 'one effect per order');

    await stopAndExpectCleanExit(t, fleet);
    t.is(await queue.getActiveCount(), 0);
  },
);

test.serial(
  'when the api gets SIGTERM during a request, then the request completes, new connections are refused and the api exits 0',
  async (t) => {
    const fleet = await startTestFleet(t, {
      label: 'e2e_stop_api',
      workers: 0,
      health: false,
      env: { SHUTDOWN_TIMEOUT_MS: '5000' },
    });
    const api = fleet.api!;
    // A POST whose body arrives in two parts, the signal in between: the request is in flight.
    const post = await startSlowPost(`${fleet.apiUrl}/orders`, orderBody(7));

    api.child.kill('SIGTERM');
    await api.waitForLine(/"msg":"shutdown requested"/, 5000);
    await sleep(300);
    t.is(api.child.exitCode, null, 'the api waits for the request in flight');
    const newcomer = await requestJson(`${fleet.apiUrl}/health/ready`).then(
      (res) => `status ${res.status}`,
      () => 'refused',
    );
    t.true(newcomer === 'refused' || newcomer === 'status 503', `a new request is not served (${newcomer})`);

    post.finish();
    const res = await post.response;
    const answered = performance.now();
    t.true(res.status === 201 || res.status === 200, `in-flight request answered ${res.status}: ${res.body}`);
    const order = JSON.parse(res.body) as OrderView;

    const exit = await api.exited;
    t.deepEqual(exit, { code: 0, signal: null });
    t.true(performance.now() - answered < 5000 + MARGIN_MS, 'exits once the request is done');
    t.truthy(logEntries(api, 'api stopped')[0]);

    // The order the request created is stored and queued.
    const db = await fleet.db();
    const stored = await db.collection<OrderDocument>('orders').findOne({ _id: order.id });
    t.is(stored?.status, 'PENDING');
    t.truthy(stored?.enqueuedAt, 'the job was added before the api closed its connections');
    t.is(await fleet.queue().getJobState(order.id), 'waiting');
  },
);

/**
 * A POST whose headers and first half of the body are sent now, the rest on `finish()`: a request
 * the server has begun and cannot complete yet. Resolves once the first half is out.
 */
async function startSlowPost(url: string, payload: unknown) {
  const body = JSON.stringify(payload);
  const half = Math.floor(body.length / 2);
  const req = request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
  });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
  });
  response.catch(() => undefined); // a caller that never finishes the body may not await it
  req.write(body.slice(0, half));
  await sleep(500); // the server has the headers: the request is in flight
  return { response, finish: () => req.end(body.slice(half)) };
}

test.serial(
  'when the api gets SIGTERM during a request that never completes, then it exits 0 within SHUTDOWN_TIMEOUT_MS',
  async (t) => {
    const shutdownTimeoutMs = 1500;
    const fleet = await startTestFleet(t, {
      label: 'e2e_stop_api_stuck',
      workers: 0,
      health: false,
      env: { SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs) },
    });
    const api = fleet.api!;
    const post = await startSlowPost(`${fleet.apiUrl}/orders`, orderBody(8));

    const signalled = performance.now();
    const exit = await api.stop('SIGTERM', 30_000);
    const stopMs = performance.now() - signalled;
    t.deepEqual(exit, { code: 0, signal: null });
    t.true(stopMs >= shutdownTimeoutMs - 100, `waited for the request (${Math.round(stopMs)} ms)`);
    t.true(stopMs < shutdownTimeoutMs + MARGIN_MS, `but no longer than the bound (${Math.round(stopMs)} ms)`);
    await t.throwsAsync(post.response, undefined, 'the unfinished request is cut off');
  },
);

test.serial('when a worker gets a second SIGTERM during its graceful stop, then it exits at once', async (t) => {
  const fleet = await startTestFleet(t, {
    label: 'e2e_stop_twice',
    workers: 1,
    health: false,
    env: { PROCESSING_DELAY_MS: '10000', SHUTDOWN_TIMEOUT_MS: '30000' },
  });
  const [worker] = fleet.workers;
  await createOrders(fleet.apiUrl, 1, 1);
  await waitFor('the order PROCESSING', async () =>
    (await listAllOrders(fleet.apiUrl, { status: 'PROCESSING' })).length === 1 ? true : undefined,
  );

  worker.child.kill('SIGTERM');
  await worker.waitForLine(/"msg":"shutdown requested"/, 5000);
  await sleep(300);
  t.is(worker.child.exitCode, null, 'the first signal waits for the active job');
  const second = performance.now();
  const exit = await worker.stop('SIGTERM', 10_000);
  const stopMs = performance.now() - second;
  t.true(stopMs < 2000, `exited ${Math.round(stopMs)} ms after the second signal`);
  t.not(exit.code, 0, 'an interrupted shutdown is not a clean exit');
  t.is(exit.signal, null, 'it exits by itself, not killed');
  t.truthy(logEntries(worker, 'second signal: exiting now')[0]);
});

/** Runs a process to its exit with its own stdout and stderr. */
async function runToExit(service: ServiceName, env: Record<string, string>, timeoutMs = 20_000) {
  const child = spawn(process.execPath, [`dist/${service}/main.js`], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const started = performance.now();
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr, elapsedMs: performance.now() - started };
}

for (const service of ['api', 'worker', 'health'] as const) {
  test.serial(
    `when the ${service} gets a bad configuration, then it exits non-zero at once naming every bad variable on stderr`,
    async (t) => {
      const result = await runToExit(service, {
        API_PORT: 'abc',
        HEALTH_PORT: '70000',
        FAILURE_RATE: '2',
        // A bad URL carrying a password: the message names the variable, never the value.
        REDIS_URL: 'http://user:hunter2@localhost:6379',
      });
      t.not(result.code, 0);
      t.is(result.code, 78, 'EX_CONFIG');
      // Module loading alone takes seconds on a loaded two-core machine; a process that tried to connect
      // or retried would not exit at all (runToExit kills it at 20 s).
      t.true(result.elapsedMs < 10_000, `exited in ${Math.round(result.elapsedMs)} ms`);
      for (const name of ['API_PORT', 'HEALTH_PORT', 'FAILURE_RATE', 'REDIS_URL']) {
        t.true(result.stderr.includes(name), `stderr names ${name}:\n${result.stderr}`);
      }
      t.false(result.stderr.includes('hunter2'), 'the secret is not echoed');
      t.false(result.stdout.includes('hunter2'));
      t.notRegex(result.stderr, /\n\s+at /, 'no stack trace for a configuration error');
    },
  );
}

test.serial(
  'when a worker is told to stop while Redis is away, then it still exits 0, within SHUTDOWN_TIMEOUT_MS, the hand-back and the slack',
  async (t) => {
    const port = await freePort();
    const redis = await spawnRedisServer(port);
    t.teardown(() => void redis.kill('SIGKILL'));
    const shutdownTimeoutMs = 2000;
    const fleet = await startTestFleet(t, {
      label: 'e2e_stop_no_redis',
      workers: 1,
      api: false,
      health: false,
      env: { REDIS_URL: `redis://127.0.0.1:${port}`, SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs) },
    });
    const [worker] = fleet.workers;
    const gone = new Promise((resolve) => redis.once('exit', resolve));
    redis.kill('SIGKILL');
    await gone;
    await sleep(1000);

    const started = Date.now();
    // Not the default 15 s: BullMQ's close never settles while Redis is away, so only the bound stops it.
    const status = await worker.stop('SIGTERM', 30_000);
    const took = Date.now() - started;
    t.deepEqual(status, { code: 0, signal: null }, 'exits 0, not killed');
    const bound = shutdownTimeoutMs + HAND_BACK_MS + SHUTDOWN_SLACK_MS + MARGIN_MS;
    t.true(took < bound, `stopped in ${took} ms (bound ${bound} ms)`);
    t.is(
      logEntries(
        worker,
        'shutdown bound passed with connections still closing (Redis or MongoDB away?); exiting anyway',
      ).length,
      1,
    );
  },
);
