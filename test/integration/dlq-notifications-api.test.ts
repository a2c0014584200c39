import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { Worker, type Job } from 'bullmq';
import {
  DELIVER_EVENT_JOB,
  createRedisConnection,
  orderEventId,
  randomOrderId,
  type EventfulStatus,
  type OrderEvent,
} from '#common';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { assertError, call } from '../helpers/api-http.js';
import { apiKeysEnv } from '../helpers/dead-letters.js';
import { stopTestServices } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

interface DeadNotification {
  readonly id: string;
  readonly type: string | null;
  readonly orderId: string | null;
  readonly failedReason: string | null;
  readonly attemptsMade: number;
  readonly finishedOn: number | null;
}
interface NotificationPage {
  readonly items: DeadNotification[];
  readonly nextCursor: null;
  readonly total: number;
}

const keys = apiKeysEnv();
const admin = { authorization: `Bearer ${keys.opsKey}` };
const apis: TestApi[] = [];
const workers: Worker[] = [];
const connections: { disconnect(): void }[] = [];

test.after.always(async () => {
  await Promise.all(workers.map((w) => w.close()));
  for (const c of connections) c.disconnect();
  for (const api of apis) {
    await api.container.notifications.obliterate({ force: true }).catch(() => undefined);
    await api.close();
  }
  await stopTestServices();
});

/** The api, and `count` webhook deliveries made to fail for real: a worker whose every delivery throws. */
async function withDeadNotifications(label: string, count: number) {
  const api = await startTestApi(label, { API_KEYS: keys.API_KEYS });
  apis.push(api);
  const statuses: EventfulStatus[] = ['PROCESSED', 'FAILED', 'CANCELLED', 'REJECTED'];
  const events = Array.from({ length: count }, (_, i) => {
    const orderId = randomOrderId();
    const status = statuses[i % statuses.length];
    return { orderId, status, id: orderEventId(orderId, status) };
  });
  for (const e of events) {
    const data = {
      type: `order.${e.status.toLowerCase()}`,
      timestamp: new Date().toISOString(),
      data: { id: e.orderId },
    };
    // Two attempts, no wait between them: the failed set fills in milliseconds, as after a day of retries.
    await api.container.notifications.add(DELIVER_EVENT_JOB, data as unknown as OrderEvent, {
      jobId: e.id,
      attempts: 2,
      backoff: { type: 'fixed', delay: 0 },
    });
  }
  const connection = createRedisConnection(api.config.redisUrl, { role: 'worker', connectionName: 'dlqn-test' });
  connections.push(connection);
  const worker = new Worker<OrderEvent>(
    'notifications',
    async (job: Job<OrderEvent>) => {
      throw new Error(`receiver answered 500 to ${job.id} on attempt ${job.attemptsMade + 1}`);
    },
    { connection, prefix: api.config.queuePrefix },
  );
  workers.push(worker);
  await waitFor('every delivery to fail', async () =>
    (await api.container.notifications.getFailedCount()) === count ? true : undefined,
  );
  await worker.close();
  return { api, events };
}

test.serial(
  'when webhook deliveries are exhausted, then GET /dlq?queue=notifications lists them with type, order and reason',
  async (t) => {
    const { api, events } = await withDeadNotifications('dlqn_list', 3);

    const res = await call<NotificationPage>(api, 'GET', '/dlq?queue=notifications', { headers: admin });

    t.is(res.status, 200, res.text);
    t.is(res.body.total, 3);
    t.is(res.body.nextCursor, null);
    t.deepEqual(res.body.items.map((i) => i.id).sort(), events.map((e) => e.id).sort());
    for (const item of res.body.items) {
      const e = events.find((x) => x.id === item.id);
      t.deepEqual(Object.keys(item).sort(), ['attemptsMade', 'failedReason', 'finishedOn', 'id', 'orderId', 'type']);
      t.is(item.orderId, e?.orderId ?? null);
      t.is(item.type, `order.${e?.status.toLowerCase()}`);
      t.is(item.attemptsMade, 2);
      t.is(item.failedReason, `receiver answered 500 to ${item.id} on attempt 2`);
      t.true(typeof item.finishedOn === 'number' && Math.abs(item.finishedOn - Date.now()) < 60_000);
    }
    // Newest failure first, and a bounded page.
    const finished = res.body.items.map((i) => i.finishedOn ?? 0);
    t.deepEqual(
      finished,
      [...finished].sort((a, b) => b - a),
    );
    const one = await call<NotificationPage>(api, 'GET', '/dlq?queue=notifications&limit=1', { headers: admin });
    t.is(one.body.items.length, 1);
    t.is(one.body.total, 3);
    // A cursor means nothing here; the shop key is no admin.
    assertError(t, await call(api, 'GET', '/dlq?queue=notifications&cursor=abc', { headers: admin }), {
      status: 400,
      code: 'VALIDATION_ERROR',
    });
    assertError(t, await call(api, 'GET', '/dlq?queue=mail', { headers: admin }), {
      status: 400,
      code: 'VALIDATION_ERROR',
    });
    const shop = await call(api, 'GET', '/dlq?queue=notifications', {
      headers: { authorization: `Bearer ${keys.shopKey}` },
    });
    t.is(shop.status, 401);
    // The orders' dead-letter list is untouched by the failed notifications.
    for (const path of ['/dlq', '/dlq?queue=orders']) {
      const orders = await call<{ items: unknown[]; nextCursor: string | null }>(api, 'GET', path, { headers: admin });
      t.is(orders.status, 200, orders.text);
      t.deepEqual(orders.body, { items: [], nextCursor: null });
    }
  },
);

test.serial(
  'when one dead notification is reprocessed, then its job waits again with the same id and attempts reset',
  async (t) => {
    const { api, events } = await withDeadNotifications('dlqn_one', 2);
    const [target, other] = events;

    const res = await call<DeadNotification>(api, 'POST', `/dlq/${target.id}/reprocess?queue=notifications`, {
      headers: admin,
    });

    t.is(res.status, 202, res.text);
    t.is(res.body.id, target.id);
    t.is(res.body.orderId, target.orderId);
    const job = await api.container.notifications.getJob(target.id);
    t.is(await job?.getState(), 'waiting');
    t.is(job?.attemptsMade, 0);
    t.is(job?.id, target.id, 'the same webhook-id is delivered again');
    t.is(await (await api.container.notifications.getJob(other.id))?.getState(), 'failed');
    // Again: it is no longer failed (409); an unknown id is a 404; the order route still wants an order id.
    assertError(t, await call(api, 'POST', `/dlq/${target.id}/reprocess?queue=notifications`, { headers: admin }), {
      status: 409,
      code: 'INVALID_STATE',
    });
    assertError(
      t,
      await call(api, 'POST', `/dlq/${randomOrderId()}-processed/reprocess?queue=notifications`, { headers: admin }),
      { status: 404, code: 'NOT_FOUND' },
    );
    assertError(t, await call(api, 'POST', `/dlq/${other.id}/reprocess`, { headers: admin }), {
      status: 404,
      code: 'NOT_FOUND',
    });

    // A receiver that answers now gets it, under the same id.
    const delivered: string[] = [];
    const connection = createRedisConnection(api.config.redisUrl, { role: 'worker', connectionName: 'dlqn-ok' });
    connections.push(connection);
    const worker = new Worker<OrderEvent>(
      'notifications',
      async (j) => {
        delivered.push(j.id ?? '');
      },
      { connection, prefix: api.config.queuePrefix },
    );
    workers.push(worker);
    await waitFor('the replayed delivery', async () => (delivered.length > 0 ? true : undefined));
    t.deepEqual(delivered, [target.id]);
    const state = await waitFor('completed', async () => {
      const s = await (await api.container.notifications.getJob(target.id))?.getState();
      return s === 'completed' ? s : undefined;
    });
    t.is(state, 'completed');
  },
);

test.serial(
  'when every dead notification is reprocessed, then all wait again with attempts reset and the tally says so',
  async (t) => {
    const { api, events } = await withDeadNotifications('dlqn_all', 5);

    const res = await call<{ reprocessed: number; skipped: number; notFound: number }>(api, 'POST', '/dlq/reprocess', {
      headers: admin,
      json: { queue: 'notifications' },
    });

    t.is(res.status, 202, res.text);
    t.deepEqual(res.body, { reprocessed: 5, skipped: 0, notFound: 0 });
    t.is(await api.container.notifications.getFailedCount(), 0);
    for (const e of events) {
      const job = await api.container.notifications.getJob(e.id);
      t.is(await job?.getState(), 'waiting');
      t.is(job?.attemptsMade, 0);
    }
    const again = await call(api, 'POST', '/dlq/reprocess', { headers: admin, json: { queue: 'notifications' } });
    t.deepEqual(again.body, { reprocessed: 0, skipped: 0, notFound: 0 });
    assertError(
      t,
      await call(api, 'POST', '/dlq/reprocess', {
        headers: admin,
        json: { queue: 'notifications', orderIds: [randomOrderId()] },
      }),
      { status: 400, code: 'VALIDATION_ERROR' },
    );
    // The orders' bulk reprocess is unchanged: nothing dead, nothing done.
    const orders = await call(api, 'POST', '/dlq/reprocess', { headers: admin, json: {} });
    t.is(orders.status, 202);
    t.deepEqual(orders.body, { reprocessed: 0, skipped: 0, notFound: 0 });
  },
);

/** Runs the compiled `npm run dlq` script against `api` with the admin key. */
function dlq(api: TestApi, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = fileURLToPath(new URL('../../scripts/dlq.js', import.meta.url));
  const env = { PATH: process.env.PATH ?? '', API_URL: api.baseUrl, API_KEY: keys.opsKey };
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

test.serial(
  'when the CLI is given --queue notifications, then it lists the undeliverable webhooks and replays one and all',
  async (t) => {
    const { api, events } = await withDeadNotifications('dlqn_cli', 3);

    const list = await dlq(api, 'list', '--queue', 'notifications');

    t.is(list.code, 0, list.stderr);
    const lines = list.stdout.split('\n');
    t.regex(lines[0], /^WEBHOOK ID\s+TYPE\s+FAILED AT\s+ATTEMPTS\s+FAILED REASON$/);
    const rows = lines.filter((l) => l.startsWith('ord_'));
    t.deepEqual(rows.map((r) => r.split(/\s+/)[0]).sort(), events.map((e) => e.id).sort());
    for (const row of rows) t.regex(row, /^ord_\S+\s+order\.\w+\s+\d{4}-\S+Z\s+2\s+receiver answered 500/);
    t.regex(list.stdout, /3 of 3 undeliverable webhooks shown\./);

    const one = await dlq(api, 'reprocess', events[0].id, '--queue', 'notifications', '--operator', 'nina');
    t.is(one.code, 0, one.stderr);
    t.regex(one.stdout, new RegExp(`^${events[0].id} \\(order\\.\\w+\\) is queued again`));
    t.is(await (await api.container.notifications.getJob(events[0].id))?.getState(), 'waiting');

    const all = await dlq(api, 'reprocess', '--all', '--queue', 'notifications', '--operator', 'nina');
    t.is(all.code, 0, all.stderr);
    t.regex(all.stdout, /reprocessed 2, skipped 0, not found 0/);
    t.is(await api.container.notifications.getFailedCount(), 0);
    // Both replays are audited under the operator the CLI named.
    const audit = await call<{ items: { action: string; queue: string; jobId?: string }[] }>(
      api,
      'GET',
      '/admin/audit?actor=nina',
      { headers: admin },
    );
    t.deepEqual(
      audit.body.items.map((i) => [i.action, i.queue, i.jobId ?? null]),
      [
        ['dlq.replay', 'notifications', null],
        ['dlq.reprocess', 'notifications', events[0].id],
      ],
    );

    const bad = await dlq(api, 'list', '--queue', 'mail');
    t.is(bad.code, 1);
    t.regex(bad.stderr, /--queue takes orders or notifications/);
  },
);

test.serial(
  'when Redis is away, then the notifications dead letters answer 503 quickly, never an empty list',
  async (t) => {
    // Nothing listens on port 1: every Redis command of this api fails at once.
    const outage = await startTestApi('dlqn_outage', { REDIS_URL: 'redis://127.0.0.1:1', API_KEYS: keys.API_KEYS });
    t.teardown(async () => {
      // Not close(): with Redis away BullMQ's obliterate waits for a connection that never comes.
      outage.server.closeAllConnections();
      await new Promise<void>((resolve) => outage.server.close(() => resolve()));
      await outage.container.close();
    });
    const id = orderEventId(randomOrderId(), 'PROCESSED');

    const list = await call(outage, 'GET', '/dlq?queue=notifications', { headers: admin });
    const one = await call(outage, 'POST', `/dlq/${id}/reprocess?queue=notifications`, { headers: admin });
    const all = await call(outage, 'POST', '/dlq/reprocess', { headers: admin, json: { queue: 'notifications' } });

    for (const [name, res] of [
      ['list', list],
      ['one', one],
      ['all', all],
    ] as const) {
      assertError(t, res, { status: 503, code: 'SERVICE_UNAVAILABLE' }, name);
      t.true(res.ms < 3000, `${name} answered in ${Math.round(res.ms)} ms`);
    }
  },
);
