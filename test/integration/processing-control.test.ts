import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { Registry } from 'prom-client';
import type { CheckResult } from '#common';
import { createQueueCheck } from '../../health/checks/queue-check.js';
import { registerHealthMetrics } from '../../health/health-metrics.js';
import { createHealthSnapshot } from '../../health/health-snapshot.js';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { assertError, call } from '../helpers/api-http.js';
import {
  apiKeysEnv,
  postOrders,
  startDeadLetterSystem,
  waitForOrders,
  type DeadLetterSystem,
} from '../helpers/dead-letters.js';
import { stopTestServices } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const keys = apiKeysEnv();
const admin = { authorization: `Bearer ${keys.opsKey}` };
const systems: DeadLetterSystem[] = [];
const apis: TestApi[] = [];

test.after.always(async () => {
  await Promise.all([...systems.map((s) => s.close()), ...apis.map((a) => a.close())]);
  await stopTestServices();
});

/** The health process's view of the api's queue: its `/health` queue report and its gauges. */
function healthOf(api: TestApi) {
  const queueReport = createQueueCheck({ queue: api.container.queue, timeoutMs: 5000 });
  const up: CheckResult = { status: 'up', latencyMs: 0 };
  const registry = new Registry();
  registerHealthMetrics({
    registry,
    snapshot: createHealthSnapshot({
      checks: { mongodb: async () => up, redis: async () => up },
      queueReport,
      paymentBreaker: async () => ({ breaker: 'unknown', workers: { closed: 0, open: 0, half_open: 0 } }),
    }),
  });
  return {
    report: queueReport,
    /** Waits for the gauge to read `value` (one scrape's snapshot is reused for half a second). */
    pausedGauge(value: '0' | '1'): Promise<true> {
      return waitFor(`queue_paused ${value}`, async () =>
        /^queue_paused (\d)$/m.exec(await registry.metrics())?.[1] === value ? true : undefined,
      );
    },
  };
}

test.serial(
  'when processing is paused through the API, then workers take no new jobs, health and the gauge show it, and resume processes them',
  async (t) => {
    const s = await startDeadLetterSystem('pause_api');
    systems.push(s);
    await s.startWorker();
    const health = healthOf(s.api);
    t.false((await health.report()).paused);
    t.true(await health.pausedGauge('0'));

    const paused = await call(s.api, 'POST', '/admin/processing/pause', {
      json: { operator: 'olga', reason: 'payment provider incident INC-9' },
    });
    t.is(paused.status, 200, paused.text);
    t.deepEqual(paused.body, { queue: 'orders', paused: true });
    t.true(await s.api.container.queue.isPaused());
    const status = await call(s.api, 'GET', '/admin/processing');
    t.deepEqual(status.body, { orders: { paused: true }, notifications: { paused: false } });
    t.true((await health.report()).paused, '/health details show the pause');
    t.true(await health.pausedGauge('1'));

    // Orders are taken (201) and wait: a running worker starts none of them while paused. (An idle
    // worker with no processing delay takes a job within milliseconds; this waits far longer.)
    const ids = await postOrders(s, 3);
    await sleep(1500);
    for (const id of ids) {
      t.is((await s.order(id)).status, 'PENDING', `${id} waits while paused`);
      t.is((await s.order(id)).attempts, 0);
    }
    t.is(await s.api.container.queue.getWaitingCount(), 3, 'their jobs wait in the queue');

    const resumed = await call(s.api, 'POST', '/admin/processing/resume', { json: { operator: 'olga' } });
    t.is(resumed.status, 200, resumed.text);
    t.deepEqual(resumed.body, { queue: 'orders', paused: false });
    await waitForOrders(s, ids, 'PROCESSED after resume', (o) => o.status === 'PROCESSED');
    t.false((await health.report()).paused);
    t.true(await health.pausedGauge('0'));

    // Both changes are in the audit, with who and why.
    const audit = await call<{
      items: { actor: string; action: string; queue: string; reason?: string; outcome: string }[];
    }>(s.api, 'GET', '/admin/audit?actor=olga');
    t.deepEqual(
      audit.body.items.map((i) => [i.action, i.queue, i.reason ?? null, i.outcome]),
      [
        ['processing.resume', 'orders', null, 'done'],
        ['processing.pause', 'orders', 'payment provider incident INC-9', 'done'],
      ],
    );
  },
);

test.serial(
  'when the notifications queue is paused, then only it is paused; bad bodies are 400, a non-admin 401',
  async (t) => {
    const api = await startTestApi('pause_rules', { API_KEYS: keys.API_KEYS });
    apis.push(api);
    const pause = await call(api, 'POST', '/admin/processing/pause', {
      json: { queue: 'notifications' },
      headers: admin,
    });
    t.is(pause.status, 200, pause.text);
    t.true(await api.container.notifications.isPaused());
    t.false(await api.container.queue.isPaused());
    const audit = await call<{ items: { actor: string; action: string; queue: string; role: string }[] }>(
      api,
      'GET',
      '/admin/audit',
      { headers: admin },
    );
    t.like(audit.body.items[0], { actor: 'ops', role: 'admin', action: 'processing.pause', queue: 'notifications' });
    // The audit's retention is a TTL index on `at` (AUDIT_RETENTION_DAYS, default 90).
    const indexes = await api.container.mongo.collection('audit_events').indexes();
    t.like(
      indexes.find((i) => i.key.at === 1),
      { expireAfterSeconds: 90 * 86_400 },
    );
    t.is(
      (await call(api, 'POST', '/admin/processing/resume', { json: { queue: 'notifications' }, headers: admin }))
        .status,
      200,
    );
    t.false(await api.container.notifications.isPaused());

    for (const json of [{ queue: 'mail' }, { operator: 'two words' }, { reason: 'x'.repeat(201) }, { paused: true }]) {
      assertError(t, await call(api, 'POST', '/admin/processing/pause', { json, headers: admin }), {
        status: 400,
        code: 'VALIDATION_ERROR',
      });
    }
    const text = await call(api, 'POST', '/admin/processing/pause', {
      body: 'queue=orders',
      headers: { ...admin, 'content-type': 'text/plain' },
    });
    t.is(text.status, 415);
    for (const [method, path] of [
      ['POST', '/admin/processing/pause'],
      ['POST', '/admin/processing/resume'],
      ['GET', '/admin/processing'],
      ['GET', '/admin/audit'],
    ] as const) {
      const res = await call(api, method, path, { headers: { authorization: `Bearer ${keys.shopKey}` } });
      t.is(res.status, 401, `${method} ${path} with a plain key`);
    }
    t.false(await api.container.queue.isPaused());
  },
);

test.serial(
  'when Redis is away, then pause answers 503 fast, the api stays up, and the failure is audited',
  async (t) => {
    const api = await startTestApi('pause_outage', { REDIS_URL: 'redis://127.0.0.1:1' });
    apis.push(api);
    const res = await call(api, 'POST', '/admin/processing/pause', { json: { operator: 'olga' } });
    assertError(t, res, { status: 503, code: 'SERVICE_UNAVAILABLE' });
    t.is((await call(api, 'GET', '/admin/processing')).status, 503);
    t.is((await call(api, 'GET', '/health/live')).status, 200);
    const audit = await call<{ items: { action: string; outcome: string; status: number }[] }>(
      api,
      'GET',
      '/admin/audit?actor=olga',
    );
    t.like(audit.body.items[0], { action: 'processing.pause', outcome: 'failed', status: 503 });
  },
);
