import { createServer, connect, type Socket } from 'node:net';
import test from 'ava';
import { freePort, hostPort } from '../../scripts/lib/embedded-services.js';
import {
  createOrders,
  listAllOrders,
  requestJson,
  startTestFleet,
  waitFor,
  stopAndExpectCleanExit,
} from '../helpers/fleet.js';

interface CheckResult {
  readonly status: 'up' | 'down';
  readonly latencyMs: number;
  readonly error?: string;
}

interface HealthDetails {
  readonly status: string;
  readonly dependencies: { readonly mongodb: CheckResult; readonly redis: CheckResult };
  readonly queue: { readonly counts: Record<string, number>; readonly workers: number } | null;
}

interface ReadyFailure {
  readonly status: string;
  readonly error: Record<string, CheckResult>;
}

const HEALTH_TIMEOUT_MS = 500;
/** What a probe may take past HEALTH_TIMEOUT_MS on a busy two-core machine. */
const MARGIN_MS = 1500;

/** GET with the time it took. */
async function timedGet<T>(url: string) {
  const started = performance.now();
  const res = await requestJson<T>(url);
  return { ...res, elapsedMs: performance.now() - started };
}

test.serial(
  'when MongoDB, Redis and two workers are up, then the health process reports live, ready, details and metrics',
  async (t) => {
    const fleet = await startTestFleet(t, { label: 'e2e_health', workers: 2 });
    const { healthUrl } = fleet;

    const live = await requestJson<{ status: string; uptimeSeconds: number }>(`${healthUrl}/health/live`);
    t.is(live.status, 200);
    t.is(live.body.status, 'ok');
    t.is(typeof live.body.uptimeSeconds, 'number');

    const ready = await requestJson<Record<string, CheckResult>>(`${healthUrl}/health/ready`);
    t.is(ready.status, 200);
    t.is(ready.body.mongodb?.status, 'up');
    t.is(ready.body.redis?.status, 'up');

    // Some finished jobs, so the queue counts have something to show.
    const created = await createOrders(fleet.apiUrl, 3, 3);
    await waitFor('3 PROCESSED orders', async () =>
      (await listAllOrders(fleet.apiUrl, { status: 'PROCESSED' })).length === 3 ? true : undefined,
    );

    const details = await requestJson<HealthDetails>(`${healthUrl}/health`);
    t.is(details.status, 200);
    t.is(details.body.status, 'ok');
    for (const name of ['mongodb', 'redis'] as const) {
      const dep = details.body.dependencies[name];
      t.is(dep.status, 'up', `${name} up`);
      t.true(Number.isInteger(dep.latencyMs) && dep.latencyMs >= 0 && dep.latencyMs < 1000, `${name} latency`);
    }
    t.is(details.body.queue?.counts.completed, created.length, 'completed jobs counted');
    t.is(details.body.queue?.counts.active, 0);
    t.is(details.body.queue?.counts.failed, 0);
    t.is(details.body.queue?.workers, 2, 'both running workers counted');

    const metrics = await requestJson<string>(`${healthUrl}/metrics`);
    t.is(metrics.status, 200);
    t.regex(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    t.regex(metrics.body, /^# TYPE queue_jobs gauge$/m);
    t.regex(metrics.body, /^queue_jobs\{state="completed",service="health"\} 3$/m);
    t.regex(metrics.body, /^queue_workers\{service="health"\} 2$/m);
    t.regex(metrics.body, /^dependency_up\{dependency="mongodb",service="health"\} 1$/m);
    t.regex(metrics.body, /^dependency_up\{dependency="redis",service="health"\} 1$/m);
    t.regex(metrics.body, /service="health"/);

    const unknown = await requestJson<{ error: { code: string } }>(`${healthUrl}/nope`);
    t.is(unknown.status, 404);
    t.is(unknown.body.error.code, 'NOT_FOUND');

    // One worker stops: the worker count follows.
    t.deepEqual(await fleet.workers[0].stop(), { code: 0, signal: null });
    const workersLeft = await waitFor(
      'the worker count to drop to 1',
      async () => {
        const res = await requestJson<HealthDetails>(`${healthUrl}/health`);
        return res.body.queue?.workers === 1 ? 1 : undefined;
      },
      { timeoutMs: 10_000 },
    );
    t.is(workersLeft, 1);

    await stopAndExpectCleanExit(t, fleet);
  },
);

test.serial(
  'when Redis does not answer, then readiness is 503 naming redis within the timeout and liveness stays 200',
  async (t) => {
    const fleet = await startTestFleet(t, { label: 'e2e_health_noredis', workers: 0, api: false, health: false });
    const port = await freePort();
    const health = await fleet.startExtra('health', 'health-no-redis', {
      REDIS_URL: 'redis://127.0.0.1:1',
      HEALTH_PORT: String(port),
      HEALTH_TIMEOUT_MS: String(HEALTH_TIMEOUT_MS),
    });
    const url = `http://127.0.0.1:${port}`;

    const first = await timedGet<ReadyFailure>(`${url}/health/ready`);
    t.is(first.status, 503);
    t.true(first.elapsedMs < HEALTH_TIMEOUT_MS + MARGIN_MS, `answered in ${Math.round(first.elapsedMs)} ms`);
    t.is(first.body.status, 'error');
    t.is(first.body.error.redis?.status, 'down');
    t.truthy(first.body.error.redis?.error);

    // Once MongoDB is connected, redis is the only failing check named.
    await waitFor('MongoDB up in /health', async () => {
      const res = await requestJson<HealthDetails>(`${url}/health`);
      return res.body.dependencies.mongodb.status === 'up' ? true : undefined;
    });
    const ready = await timedGet<ReadyFailure>(`${url}/health/ready`);
    t.is(ready.status, 503);
    t.true(ready.elapsedMs < HEALTH_TIMEOUT_MS + MARGIN_MS, `answered in ${Math.round(ready.elapsedMs)} ms`);
    t.deepEqual(Object.keys(ready.body.error), ['redis']);

    const details = await requestJson<HealthDetails>(`${url}/health`);
    t.is(details.status, 503);
    t.is(details.body.dependencies.redis.status, 'down');
    t.is(details.body.queue, null);

    const metrics = await requestJson<string>(`${url}/metrics`);
    t.is(metrics.status, 200, 'metrics are served while Redis is away');
    t.regex(metrics.body, /^dependency_up\{dependency="redis",service="health"\} 0$/m);

    const live = await requestJson<{ status: string }>(`${url}/health/live`);
    t.is(live.status, 200);
    t.is(live.body.status, 'ok');

    t.deepEqual(await health.stop(), { code: 0, signal: null });
  },
);

test.serial(
  'when MongoDB does not answer, then readiness is 503 naming mongodb within the timeout and liveness stays 200',
  async (t) => {
    const fleet = await startTestFleet(t, { label: 'e2e_health_nomongo', workers: 0, api: false, health: false });
    const port = await freePort();
    const health = await fleet.startExtra('health', 'health-no-mongo', {
      MONGO_URL: 'mongodb://127.0.0.1:1/orders',
      HEALTH_PORT: String(port),
      HEALTH_TIMEOUT_MS: String(HEALTH_TIMEOUT_MS),
    });
    const url = `http://127.0.0.1:${port}`;

    // Redis connects on its own; wait for it so mongodb is the only failing check.
    await waitFor('Redis up in /health', async () => {
      const res = await requestJson<HealthDetails>(`${url}/health`);
      return res.body.dependencies.redis.status === 'up' ? true : undefined;
    });
    const ready = await timedGet<ReadyFailure>(`${url}/health/ready`);
    t.is(ready.status, 503);
    t.true(ready.elapsedMs < HEALTH_TIMEOUT_MS + MARGIN_MS, `answered in ${Math.round(ready.elapsedMs)} ms`);
    t.deepEqual(Object.keys(ready.body.error), ['mongodb']);
    t.is(ready.body.error.mongodb?.status, 'down');

    const details = await requestJson<HealthDetails>(`${url}/health`);
    t.is(details.status, 503);
    t.is(details.body.dependencies.mongodb.status, 'down');
    t.is(details.body.dependencies.redis.status, 'up');
    t.is(details.body.queue?.workers, 0, 'queue details still come from Redis');

    const live = await requestJson<Record<string, unknown>>(`${url}/health/live`);
    t.is(live.status, 200);
    // Terminus merged every probe's result into one shared object: liveness showed readiness' mongodb.
    t.deepEqual(Object.keys(live.body).sort(), ['status', 'uptimeSeconds'], 'liveness describes only itself');
    t.regex(live.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, 'probes carry X-Request-Id');
    const echoed = await requestJson(`${url}/health/ready`, { headers: { 'x-request-id': 'probe-1' } });
    t.is(echoed.headers.get('x-request-id'), 'probe-1');
    const later = await requestJson<{ uptimeSeconds: number }>(`${url}/health/live`);
    t.true(later.body.uptimeSeconds >= (live.body.uptimeSeconds as number), 'uptime computed per request');
    for (const path of ['/health/live', '/health/ready', '/health']) {
      t.is((await requestJson(`${url}${path}`, { method: 'HEAD' })).status === 405, false, `HEAD ${path}`);
      for (const method of ['POST', 'DELETE', 'PUT', 'PATCH']) {
        const refused = await requestJson<{ error: { code: string } }>(`${url}${path}`, { method });
        t.is(refused.status, 405, `${method} ${path}`);
        t.is(refused.headers.get('allow'), 'GET, HEAD', `${method} ${path}: Allow`);
        t.is(refused.body.error.code, 'METHOD_NOT_ALLOWED');
      }
    }

    const stopped = performance.now();
    t.deepEqual(await health.stop(), { code: 0, signal: null });
    t.true(performance.now() - stopped < 5000, 'stops promptly though MongoDB never answered');
  },
);

/**
 * A TCP proxy to `url`'s host and port that can stop passing bytes (both ways) without closing
 * anything: to the client the server looks frozen, the way a stuck or partitioned server does.
 */
async function startFreezableProxy(url: string, defaultPort: number) {
  const target = hostPort(url, defaultPort);
  let frozen = false;
  const held: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on('data', (chunk) => {
        if (frozen) held.push(() => to.write(chunk));
        else to.write(chunk);
      });
    }
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
      for (const write of held.splice(0)) write();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test.serial(
  'when MongoDB or Redis stops answering after start, then readiness turns 503 naming it within the timeout, and 200 once it answers again',
  async (t) => {
    const fleet = await startTestFleet(t, { label: 'e2e_health_freeze', workers: 0, api: false, health: false });
    const redisProxy = await startFreezableProxy(fleet.redisUrl, 6379);
    const mongoProxy = await startFreezableProxy(fleet.mongoUrl, 27017);
    t.teardown(() => Promise.all([redisProxy.close(), mongoProxy.close()]).then(() => undefined));
    const port = await freePort();
    const health = await fleet.startExtra('health', 'health-via-proxy', {
      REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
      MONGO_URL: `mongodb://127.0.0.1:${mongoProxy.port}/${fleet.name}`,
      HEALTH_PORT: String(port),
      HEALTH_TIMEOUT_MS: String(HEALTH_TIMEOUT_MS),
    });
    const url = `http://127.0.0.1:${port}`;
    const waitReady = () =>
      waitFor(
        'readiness 200',
        async () => ((await requestJson(`${url}/health/ready`)).status === 200 ? true : undefined),
        {
          timeoutMs: 20_000,
        },
      );

    await waitReady();
    for (const [name, proxy] of [
      ['redis', redisProxy],
      ['mongodb', mongoProxy],
    ] as const) {
      proxy.freeze();
      const ready = await timedGet<ReadyFailure>(`${url}/health/ready`);
      t.is(ready.status, 503, `${name} frozen: not ready`);
      t.true(
        ready.elapsedMs < HEALTH_TIMEOUT_MS + MARGIN_MS,
        `${name} frozen: answered in ${Math.round(ready.elapsedMs)} ms`,
      );
      t.deepEqual(Object.keys(ready.body.error ?? {}), [name], `${name} frozen: only ${name} named`);
      const details = await timedGet<HealthDetails>(`${url}/health`);
      t.is(details.status, 503);
      t.true(
        details.elapsedMs < 2 * HEALTH_TIMEOUT_MS + MARGIN_MS,
        `${name} frozen: /health in ${Math.round(details.elapsedMs)} ms`,
      );
      const live = await timedGet(`${url}/health/live`);
      t.is(live.status, 200, `${name} frozen: still live`);
      proxy.thaw();
      await waitReady();
    }

    t.deepEqual(await health.stop(), { code: 0, signal: null });
  },
);

// Regression: the gauges once lagged one scrape behind (filled by a gauge collected after them).
test.serial('when /metrics is scraped once, then the queue and dependency gauges show the current state', async (t) => {
  const fleet = await startTestFleet(t, { label: 'e2e_health_scrape', workers: 1, api: false });
  // The health process connects to MongoDB after it listens: until then the gauge rightly says 0.
  await waitFor('health ready', async () =>
    (await requestJson(`${fleet.healthUrl}/health/ready`)).status === 200 ? true : undefined,
  );
  const metrics = await requestJson<string>(`${fleet.healthUrl}/metrics`);
  t.is(metrics.status, 200);
  t.regex(metrics.body, /^queue_workers\{service="health"\} 1$/m);
  t.regex(metrics.body, /^queue_jobs\{state="waiting",service="health"\} 0$/m);
  t.regex(metrics.body, /^dependency_up\{dependency="mongodb",service="health"\} 1$/m);
  t.regex(metrics.body, /^dependency_up\{dependency="redis",service="health"\} 1$/m);
});
