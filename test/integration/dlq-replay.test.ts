import test from 'ava';
import { Worker, type Job } from 'bullmq';
import { DELIVER_EVENT_JOB, createRedisConnection, orderEventId, randomOrderId, type OrderEvent } from '#common';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { assertError, call } from '../helpers/api-http.js';
import { apiKeysEnv, seedOrder, startDeadLetterSystem, type DeadLetterSystem } from '../helpers/dead-letters.js';
import { stopTestServices } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

interface Candidate {
  readonly id: string;
  readonly orderId: string | null;
  readonly customerId: string | null;
  readonly failedAt: string | null;
  readonly failedReason: string | null;
}
type Replay =
  | { dryRun: true; matched: number; sample: Candidate[] }
  | { dryRun: false; reprocessed: number; skipped: number; notFound: number; remaining: number };

const keys = apiKeysEnv();
const admin = { authorization: `Bearer ${keys.opsKey}` };
const systems: DeadLetterSystem[] = [];
const apis: TestApi[] = [];
const cleanups: (() => Promise<void>)[] = [];

test.after.always(async () => {
  for (const c of cleanups) await c().catch(() => undefined);
  await Promise.all(systems.map((s) => s.close()));
  for (const api of apis) await api.close();
  await stopTestServices();
});

const replay = (api: Pick<TestApi, 'baseUrl'>, json: Record<string, unknown>) =>
  call<Replay>(api, 'POST', '/dlq/reprocess', { json, headers: admin });

const T0 = Date.parse('2026-11-20T00:00:00Z');
const at = (hours: number) => new Date(T0 + hours * 3_600_000);

/** Dead orders of two customers, failed at different hours for different reasons, and one PENDING order. */
async function seedDeadLetters(s: DeadLetterSystem) {
  const seed = (customerId: string, hours: number, lastError: string) =>
    seedOrder(s, 'FAILED', { customerId, failedAt: at(hours), lastError, clientId: 'ops' });
  const a1 = await seed('c-a', 1, 'payment provider ETIMEDOUT after 2000 ms');
  const a2 = await seed('c-a', 2, 'MongoServerError: connection reset (ECONNRESET)');
  const b2 = await seed('c-b', 2, 'payment provider etimedout after 2000 ms');
  const b5 = await seed('c-b', 5, 'payment provider ETIMEDOUT after 2000 ms');
  const pending = await seedOrder(s, 'PENDING', { customerId: 'c-a' });
  return { a1, a2, b2, b5, pending };
}

test.serial(
  'when a dry run names filters, then it counts and samples exactly the matching dead orders and changes nothing',
  async (t) => {
    const s = await startDeadLetterSystem('replay_dry', { API_KEYS: keys.API_KEYS });
    systems.push(s);
    const ids = await seedDeadLetters(s);

    const byCustomer = await replay(s.api, { customerId: 'c-a', dryRun: true });
    t.is(byCustomer.status, 200, byCustomer.text);
    t.like(byCustomer.body, { dryRun: true, matched: 2 });
    const sample = (byCustomer.body as { sample: Candidate[] }).sample;
    t.deepEqual(sample.map((c) => c.id).sort(), [ids.a1, ids.a2].sort());
    t.deepEqual(
      sample.find((c) => c.id === ids.a1),
      {
        id: ids.a1,
        orderId: ids.a1,
        customerId: 'c-a',
        failedAt: at(1).toISOString(),
        failedReason: 'payment provider ETIMEDOUT after 2000 ms',
      },
    );

    // A reason is a case-insensitive substring (an error code), the window is [from, to).
    const byReason = await replay(s.api, { failedReason: 'ETIMEDOUT', dryRun: true });
    t.like(byReason.body, { dryRun: true, matched: 3 });
    const byWindow = await replay(s.api, {
      failedFrom: at(2).toISOString(),
      failedTo: at(5).toISOString(),
      dryRun: true,
    });
    t.deepEqual((byWindow.body as { sample: Candidate[] }).sample.map((c) => c.id).sort(), [ids.a2, ids.b2].sort());
    const all = await replay(s.api, {
      customerId: 'c-b',
      failedReason: 'etimedout',
      failedFrom: at(3).toISOString(),
      dryRun: true,
    });
    t.deepEqual(
      (all.body as { sample: Candidate[] }).sample.map((c) => c.id),
      [ids.b5],
    );
    const sampled = await replay(s.api, { dryRun: true, limit: 1 });
    t.like(sampled.body, { dryRun: true, matched: 4 });
    t.is((sampled.body as { sample: Candidate[] }).sample.length, 1, 'the sample is bounded by limit');

    // Nothing moved and nothing was queued.
    for (const id of [ids.a1, ids.a2, ids.b2, ids.b5]) t.is((await s.order(id)).status, 'FAILED');
    t.is(await s.api.container.queue.count(), 0);
  },
);

test.serial(
  'when a filtered replay runs in bounded batches, then only the matches come back, each under the operator and reason, and remaining counts down',
  async (t) => {
    const s = await startDeadLetterSystem('replay_run', { API_KEYS: keys.API_KEYS });
    systems.push(s);
    const ids = await seedDeadLetters(s);
    const body = { failedReason: 'etimedout', limit: 2, operator: 'alice', reason: 'provider fixed (INC-7)' };

    const first = await replay(s.api, body);
    t.is(first.status, 202, first.text);
    t.deepEqual(first.body, { dryRun: false, reprocessed: 2, skipped: 0, notFound: 0, remaining: 1 });
    const second = await replay(s.api, body);
    t.deepEqual(second.body, { dryRun: false, reprocessed: 1, skipped: 0, notFound: 0, remaining: 0 });
    const third = await replay(s.api, body);
    t.deepEqual(third.body, { dryRun: false, reprocessed: 0, skipped: 0, notFound: 0, remaining: 0 });

    for (const id of [ids.a1, ids.b2, ids.b5]) {
      const order = await s.order(id);
      t.is(order.status, 'PENDING', id);
      const entry = order.history.at(-1);
      t.is(entry?.by, 'alice');
      t.is(entry?.reason, 'reprocess requested by alice: provider fixed (INC-7)');
      t.truthy(await s.api.container.queue.getJob(id), 'its job is queued again');
    }
    t.is((await s.order(ids.a2)).status, 'FAILED', 'another failure reason is left dead');
    t.is((await s.order(ids.pending)).status, 'PENDING');

    // The API shows `by` in the order view; without `operator` the API client is the operator.
    const view = await call<{ history: { by?: string }[] }>(s.api, 'GET', `/orders/${ids.a1}`, { headers: admin });
    t.is(view.body.history.at(-1)?.by, 'alice');
    const byClient = await replay(s.api, { customerId: 'c-a' });
    t.like(byClient.body, { reprocessed: 1, remaining: 0 });
    t.is((await s.order(ids.a2)).history.at(-1)?.by, 'ops');

    // Each replay request is in the audit (the last one found nothing left); dry runs are not.
    const audit = await call<{ items: { actor: string; action: string; queue: string; reason?: string }[] }>(
      s.api,
      'GET',
      '/admin/audit?action=dlq.replay',
      { headers: admin },
    );
    t.deepEqual(
      audit.body.items.map((i) => [i.actor, i.queue, i.reason ?? null]),
      [
        ['ops', 'orders', null],
        ['alice', 'orders', 'provider fixed (INC-7)'],
        ['alice', 'orders', 'provider fixed (INC-7)'],
        ['alice', 'orders', 'provider fixed (INC-7)'],
      ],
    );
  },
);

test.serial('when a filtered replay is malformed, then it is a 400 naming the field and nothing moves', async (t) => {
  const s = await startDeadLetterSystem('replay_bad', { API_KEYS: keys.API_KEYS });
  systems.push(s);
  const ids = await seedDeadLetters(s);
  const bad: [Record<string, unknown>, string][] = [
    [{ failedFrom: at(5).toISOString(), failedTo: at(1).toISOString() }, 'failedTo'],
    [{ failedFrom: 'yesterday' }, 'failedFrom'],
    [{ failedReason: '' }, 'failedReason'],
    [{ customerId: 'c a' }, 'customerId'],
    [{ operator: 'alice smith', dryRun: true }, 'operator'],
    [{ limit: 0 }, 'limit'],
    [{ limit: 1001 }, 'limit'],
    [{ dryRun: 'yes' }, 'dryRun'],
    [{ queue: 'notifications', orderIds: [ids.a1], dryRun: true }, 'orderIds'],
  ];
  for (const [json, field] of bad) {
    const res = await replay(s.api, json);
    assertError(t, res, { status: 400, code: 'VALIDATION_ERROR' });
    t.true(
      (res.body as unknown as { error: { details: { field: string }[] } }).error.details.some((d) => d.field === field),
      `${JSON.stringify(json)} names ${field}: ${res.text}`,
    );
  }
  const shop = await call(s.api, 'POST', '/dlq/reprocess', {
    json: { dryRun: true },
    headers: { authorization: `Bearer ${keys.shopKey}` },
  });
  t.is(shop.status, 401);
  for (const id of [ids.a1, ids.a2, ids.b2, ids.b5]) t.is((await s.order(id)).status, 'FAILED');
});

test.serial(
  'when the notifications queue is filtered, then a dry run counts the matching failed deliveries and a replay retries only those',
  async (t) => {
    const api = await startTestApi('replay_notif', { API_KEYS: keys.API_KEYS });
    apis.push(api);
    cleanups.push(() => api.container.notifications.obliterate({ force: true }));
    const events = ['c-x', 'c-x', 'c-y'].map((customerId) => {
      const orderId = randomOrderId();
      return { orderId, customerId, id: orderEventId(orderId, 'PROCESSED') };
    });
    for (const e of events) {
      const data = {
        type: 'order.processed',
        timestamp: new Date().toISOString(),
        data: { id: e.orderId, customerId: e.customerId },
      };
      await api.container.notifications.add(DELIVER_EVENT_JOB, data as unknown as OrderEvent, {
        jobId: e.id,
        attempts: 1,
      });
    }
    const connection = createRedisConnection(api.config.redisUrl, { role: 'worker', connectionName: 'replay-test' });
    const worker = new Worker<OrderEvent>(
      'notifications',
      async (job: Job<OrderEvent>) => {
        throw new Error(job.data.data.customerId === 'c-x' ? 'receiver answered 503' : 'receiver timed out');
      },
      { connection, prefix: api.config.queuePrefix },
    );
    cleanups.push(async () => {
      await worker.close();
      connection.disconnect();
    });
    await waitFor('every delivery to fail', async () =>
      (await api.container.notifications.getFailedCount()) === events.length ? true : undefined,
    );
    await worker.close();

    const dry = await replay(api, { queue: 'notifications', customerId: 'c-x', dryRun: true });
    t.is(dry.status, 200, dry.text);
    t.like(dry.body, { dryRun: true, matched: 2 });
    const sample = (dry.body as { sample: Candidate[] }).sample;
    t.deepEqual(sample.map((c) => c.id).sort(), [events[0].id, events[1].id].sort());
    t.like(sample[0], { customerId: 'c-x', failedReason: 'receiver answered 503' });
    t.is(await api.container.notifications.getFailedCount(), 3, 'a dry run retries nothing');
    const byReason = await replay(api, { queue: 'notifications', failedReason: 'TIMED OUT', dryRun: true });
    t.like(byReason.body, { matched: 1 });

    const run = await replay(api, { queue: 'notifications', failedReason: '503', limit: 1, operator: 'bob' });
    t.is(run.status, 202, run.text);
    t.deepEqual(run.body, { dryRun: false, reprocessed: 1, skipped: 0, notFound: 0, remaining: 1 });
    const rest = await replay(api, { queue: 'notifications', failedReason: '503' });
    t.like(rest.body, { reprocessed: 1, remaining: 0 });
    t.is(await api.container.notifications.getJobState(events[2].id), 'failed', 'the other reason stays failed');
    for (const e of events.slice(0, 2)) {
      t.not(await api.container.notifications.getJobState(e.id), 'failed', `${e.id} is queued again`);
    }
  },
);
