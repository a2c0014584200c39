import test from 'ava';
import { UnrecoverableError, type JobsOptions } from 'bullmq';
import { Registry } from 'prom-client';
import { Webhook } from 'standardwebhooks';
import {
  ConfigError,
  DELIVER_EVENT_JOB,
  assertPublicWebhookHost,
  createLogger,
  createOrderEventPublisher,
  isNonPublicAddress,
  loadConfig,
  notificationJobOptions,
  orderEventId,
  toOrder,
  webhookRetrySchedule,
  webhookUrlProblems,
  type JobAdder,
  type OrderEvent,
} from '#common';
import { createNotificationMetrics } from '../../worker/notifications/notification-metrics.js';
import { createDeliveryProcessor, createOrderEventNotifier } from '../../worker/notifications/notifications-worker.js';
import { batchedOrderReads } from '../../worker/repositories/order-repository.js';
import {
  createWebhookPoster,
  createWebhookSigner,
  type DeliveryResult,
} from '../../worker/notifications/webhook-sender.js';
import { storedOrder } from '../helpers/orders.js';

const logger = createLogger({ service: 'test', level: 'silent' });
const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const OLD_SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;

test('when a payload is signed, then the standardwebhooks library verifies it, and any listed secret does during rotation', (t) => {
  const sign = createWebhookSigner([SECRET, OLD_SECRET]);
  const body = JSON.stringify({ type: 'order.processed', timestamp: new Date().toISOString(), data: { id: 'x' } });
  const headers = sign('ord_1-processed', body);
  t.is(headers['webhook-id'], 'ord_1-processed');
  t.is(headers['webhook-signature'].split(' ').length, 2);
  t.true(headers['webhook-signature'].split(' ').every((s) => s.startsWith('v1,')));
  t.deepEqual(new Webhook(SECRET).verify(body, { ...headers }), JSON.parse(body));
  t.deepEqual(new Webhook(OLD_SECRET).verify(body, { ...headers }), JSON.parse(body));
  t.throws(() => new Webhook(`whsec_${Buffer.alloc(32, 1).toString('base64')}`).verify(body, { ...headers }));
});

test('when the body is tampered with or the timestamp is old, then verification fails on the receiver side', (t) => {
  const sign = createWebhookSigner([SECRET]);
  const body = JSON.stringify({ type: 'order.processed', data: { id: 'ord_1', totalCents: 100 } });
  const fresh = sign('ord_1-processed', body);
  const tampered = body.replace('100', '1');
  t.throws(() => new Webhook(SECRET).verify(tampered, { ...fresh }), { message: /signature/i });
  const old = sign('ord_1-processed', body, new Date(Date.now() - 10 * 60_000));
  t.throws(() => new Webhook(SECRET).verify(body, { ...old }), { message: /timestamp/i });
  t.throws(() => new Webhook(SECRET).verify(body, { ...fresh, 'webhook-id': 'ord_1-failed' }));
});

test('when the retry horizon is a day, then 13 attempts double from 21 s and the nominal waits add up to the day', (t) => {
  const day = 86_400_000;
  const schedule = webhookRetrySchedule(day);
  t.is(schedule.attempts, 13);
  t.is(schedule.baseDelayMs, 21_099);
  t.is(schedule.delaysMs.at(-1), 21_099 * 2048);
  const sum = schedule.delaysMs.reduce((a, b) => a + b, 0);
  t.true(Math.abs(sum - day) < 0.001 * day, `sum ${sum}`);
  // With 50 % jitter each wait is 50–100 % of its nominal value: the last try comes 12–24 h after the first.
  t.deepEqual(notificationJobOptions(day).backoff, { type: 'exponential', delay: 21_099, jitter: 0.5 });
  t.is(notificationJobOptions(day).attempts, 13);
  t.false(notificationJobOptions(day).removeOnFail);
});

test('when the horizon is short, then the schedule shrinks with it and never waits less than 1 ms', (t) => {
  t.is(webhookRetrySchedule(40_950).baseDelayMs, 10);
  t.deepEqual(webhookRetrySchedule(40_950).delaysMs.slice(0, 3), [10, 20, 40]);
  t.is(webhookRetrySchedule(1000).baseDelayMs, 1);
});

test('when addresses are loopback, private, link-local or mapped ones, then they are not public; others are', (t) => {
  for (const ip of [
    '127.0.0.1',
    '10.1.2.3',
    '172.20.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    'fd00::1',
    'fe80::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
  ]) {
    t.true(isNonPublicAddress(ip), ip);
  }
  for (const ip of ['93.184.216.34', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8', '172.32.0.1']) {
    t.false(isNonPublicAddress(ip), ip);
  }
});

test('when in production, then WEBHOOK_URL must be https (unless allowed) and must not name an inward host', (t) => {
  const prod = { production: true, allowHttp: false };
  t.deepEqual(webhookUrlProblems('https://hooks.example.com/x', prod), []);
  t.is(webhookUrlProblems('http://hooks.example.com/x', prod).length, 1);
  t.deepEqual(webhookUrlProblems('http://hooks.example.com/x', { production: true, allowHttp: true }), []);
  t.is(webhookUrlProblems('https://127.0.0.1/x', prod).length, 1);
  t.is(webhookUrlProblems('https://[::1]/x', prod).length, 1);
  t.is(webhookUrlProblems('https://localhost:8443/x', prod).length, 1);
  t.is(webhookUrlProblems('http://169.254.169.254/latest', { production: true, allowHttp: true }).length, 1);
  t.deepEqual(webhookUrlProblems('http://127.0.0.1:3003/webhooks', { production: false, allowHttp: false }), []);
});

test('when the config names a webhook, then the secret is required and production refuses http and inward hosts', (t) => {
  const base = { NODE_ENV: 'production', API_AUTH: 'off' };
  t.is(loadConfig({ ...base }).webhook, undefined);
  const ok = loadConfig({
    ...base,
    WEBHOOK_URL: 'https://hooks.example.com/x',
    WEBHOOK_SECRET: `${SECRET}, ${OLD_SECRET}`,
  });
  t.deepEqual(ok.webhook?.secrets, [SECRET, OLD_SECRET]);
  t.is(ok.webhook?.retryHorizonMs, 86_400_000);
  t.is(ok.webhook?.concurrency, 10);
  t.is(ok.webhook?.timeoutMs, 5000);
  t.throws(() => loadConfig({ ...base, WEBHOOK_URL: 'https://hooks.example.com/x' }), {
    instanceOf: ConfigError,
    message: /WEBHOOK_SECRET/,
  });
  t.throws(() => loadConfig({ ...base, WEBHOOK_URL: 'https://hooks.example.com/x', WEBHOOK_SECRET: 'hunter2' }), {
    instanceOf: ConfigError,
  });
  t.throws(() => loadConfig({ ...base, WEBHOOK_URL: 'http://hooks.example.com/x', WEBHOOK_SECRET: SECRET }), {
    message: /https/,
  });
  t.throws(() => loadConfig({ ...base, WEBHOOK_URL: 'https://10.0.0.5/x', WEBHOOK_SECRET: SECRET }), {
    message: /private/,
  });
  t.truthy(loadConfig({ WEBHOOK_URL: 'http://127.0.0.1:3003/webhooks', WEBHOOK_SECRET: SECRET }).webhook);
});

test('when the host resolves to an inward address, then the start-up check refuses it; public answers pass', async (t) => {
  await t.throwsAsync(
    assertPublicWebhookHost('https://hooks.example.com/', async () => [
      { address: '93.184.216.34' },
      { address: '10.0.0.1' },
    ]),
    { message: /10\.0\.0\.1/ },
  );
  await t.throwsAsync(assertPublicWebhookHost('https://hooks.example.com/', async () => []));
  await t.notThrowsAsync(
    assertPublicWebhookHost('https://hooks.example.com/', async () => [{ address: '93.184.216.34' }]),
  );
});

function processorWith(result: DeliveryResult) {
  const registry = new Registry();
  const metrics = createNotificationMetrics(registry, async () => undefined);
  const posted: { body: string; headers: Record<string, string> }[] = [];
  const processor = createDeliveryProcessor({
    sign: createWebhookSigner([SECRET]),
    post: async (body, headers) => {
      posted.push({ body, headers: { ...headers } });
      return result;
    },
    metrics,
    logger,
  });
  return { processor, posted, registry };
}

const order = toOrder(storedOrder('PROCESSED'));
const event: OrderEvent = {
  type: 'order.processed',
  timestamp: new Date().toISOString(),
  data: { id: order.id } as never,
};
const job = (attemptsMade: number) => ({
  id: `${order.id}-processed`,
  data: event,
  attemptsMade,
  opts: { attempts: 13 },
});

test('when the receiver answers 2xx, then the delivery succeeds with a verifiable body and is counted delivered', async (t) => {
  const { processor, posted, registry } = processorWith({ status: 202 });
  t.is(await processor(job(0)), 202);
  t.deepEqual(new Webhook(SECRET).verify(posted[0]!.body, posted[0]!.headers), event);
  t.is(posted[0]!.headers['webhook-id'], `${order.id}-processed`);
  t.regex(await registry.metrics(), /webhook_deliveries_total\{outcome="delivered",status_class="2xx"\} 1/);
});

test('when the receiver answers 410, then the job fails for good (no retry)', async (t) => {
  const { processor, registry } = processorWith({ status: 410 });
  await t.throwsAsync(processor(job(0)), { instanceOf: UnrecoverableError });
  t.regex(await registry.metrics(), /outcome="gone",status_class="4xx"/);
});

test('when the receiver fails, then the attempt throws to be retried, and the last one counts as exhausted', async (t) => {
  const failing = processorWith({ status: 500 });
  await t.throwsAsync(failing.processor(job(0)), { message: /500/ });
  t.regex(await failing.registry.metrics(), /outcome="retry",status_class="5xx"/);
  const timedOut = processorWith({ error: 'timeout', cause: new Error('no answer') });
  await t.throwsAsync(timedOut.processor(job(12)), { message: /timeout/ });
  t.regex(await timedOut.registry.metrics(), /outcome="exhausted",status_class="timeout"/);
});

/** A queue that records what is added to it, one call at a time (`add`) or together (`addBulk`). */
function recordingQueue(fail?: Error) {
  const calls: { kind: 'add' | 'addBulk'; jobs: { name: string; data: OrderEvent; opts?: JobsOptions }[] }[] = [];
  const queue: JobAdder<OrderEvent> = {
    add: (name, data, opts) => {
      calls.push({ kind: 'add', jobs: [{ name, data, opts }] });
      return fail ? Promise.reject(fail) : Promise.resolve();
    },
    addBulk: (jobs) => {
      calls.push({ kind: 'addBulk', jobs });
      return fail ? Promise.reject(fail) : Promise.resolve();
    },
  };
  return { queue, calls };
}

test('when an order reaches an eventful status, then one job is added with the id from order and status; Redis failures are swallowed', async (t) => {
  const results: string[] = [];
  const { queue, calls } = recordingQueue();
  const publisher = createOrderEventPublisher({ queue, logger, onResult: (r) => results.push(r) });
  await publisher.publish(toOrder(storedOrder('REJECTED', { rejectionReason: 'OUT_OF_STOCK' })));
  await publisher.publish(toOrder(storedOrder('PENDING')));
  t.is(calls.length, 1);
  t.is(calls[0]!.kind, 'add', 'a lone event is a plain add');
  const [added] = calls[0]!.jobs;
  t.is(added!.data.type, 'order.rejected');
  t.is(added!.data.data.status, 'REJECTED');
  t.regex(added!.opts?.jobId ?? '', /^ord_[0-9a-f]{32}-rejected$/);
  t.false((added!.opts?.jobId ?? '').includes(':'));
  t.is(orderEventId('ord_x', 'CANCELLED'), 'ord_x-cancelled');

  const broken = createOrderEventPublisher({
    queue: recordingQueue(new Error('Redis away')).queue,
    logger,
    onResult: (r) => results.push(r),
  });
  await t.notThrowsAsync(broken.publish(toOrder(storedOrder('FAILED'))));
  t.deepEqual(results, ['added', 'skipped', 'failed']);
});

test('when orders end at once, then their events share one addBulk, each with its own id; a failed addBulk fails each of them', async (t) => {
  const results: string[] = [];
  const { queue, calls } = recordingQueue();
  const publisher = createOrderEventPublisher({ queue, logger, onResult: (r) => results.push(r) });
  const orders = Array.from({ length: 5 }, () => toOrder(storedOrder('PROCESSED')));
  await Promise.all(orders.map((o) => publisher.publish(o)));
  t.deepEqual(
    calls.map((c) => c.kind),
    ['addBulk'],
  );
  t.deepEqual(
    calls[0]!.jobs.map((j) => j.opts?.jobId),
    orders.map((o) => orderEventId(o.id, 'PROCESSED')),
  );
  t.true(calls[0]!.jobs.every((j) => j.name === DELIVER_EVENT_JOB && j.data.type === 'order.processed'));
  t.deepEqual(results, ['added', 'added', 'added', 'added', 'added']);

  const failed: string[] = [];
  const broken = createOrderEventPublisher({
    queue: recordingQueue(new Error('Redis away')).queue,
    logger,
    onResult: (r) => failed.push(r),
  });
  await Promise.all(orders.map((o) => broken.publish(o)));
  t.deepEqual(failed, ['failed', 'failed', 'failed', 'failed', 'failed']);
});

test('when Redis does not answer, then each publish gives up within its bound and counts the event failed', async (t) => {
  const results: string[] = [];
  const never = new Promise<never>(() => undefined);
  const publisher = createOrderEventPublisher({
    queue: { add: () => never, addBulk: () => never },
    logger,
    onResult: (r) => results.push(r),
    timeoutMs: 100,
  });
  const started = performance.now();
  await Promise.all([
    publisher.publish(toOrder(storedOrder('PROCESSED'))),
    publisher.publish(toOrder(storedOrder('CANCELLED'))),
  ]);
  const ms = performance.now() - started;
  t.true(ms >= 90 && ms < 2000, `${ms} ms`);
  t.deepEqual(results, ['failed', 'failed']);
});

test('when a delivery in production resolves its host to loopback, then the connection is refused before it is made', async (t) => {
  const post = createWebhookPoster({ url: 'http://localhost:9/webhooks', timeoutMs: 2000, publicOnly: true });
  const result = await post('{}', createWebhookSigner([SECRET])('ord_x-processed', '{}'));
  t.true('error' in result && result.error === 'network' && /non-public/.test(result.cause.message));
});

test('when orders end at once, then the notifier reads them in one find and publishes each stored one; a failed read publishes nothing and settles', async (t) => {
  const reads: string[][] = [];
  const published: string[] = [];
  const stored = Array.from({ length: 4 }, () => toOrder(storedOrder('PROCESSED')));
  let failReads = false;
  const findByIds = (ids: readonly string[]) => {
    reads.push([...ids]);
    if (failReads) return Promise.reject(new Error('MongoDB away'));
    return Promise.resolve(new Map(stored.filter((o) => ids.includes(o.id)).map((o) => [o.id, o])));
  };
  // As the worker wires it: the notifier reads through the repository's batched reads.
  const notifier = createOrderEventNotifier({
    findById: batchedOrderReads(findByIds, 1000),
    publisher: { publish: (order) => Promise.resolve(void published.push(order.id)) },
    logger,
  });
  const missing = 'ord_00000000000000000000000000000000';
  for (const o of stored) notifier.notify(o.id);
  notifier.notify(missing);
  await notifier.settle();
  t.deepEqual(reads, [[...stored.map((o) => o.id), missing]], 'one read for the five');
  t.deepEqual(
    published,
    stored.map((o) => o.id),
    'the missing order has no event',
  );

  failReads = true;
  notifier.notify(stored[0]!.id);
  await notifier.settle();
  t.is(published.length, 4);
});
