import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import type { Queue } from 'bullmq';
import { Registry } from 'prom-client';
import {
  createLogger,
  createNotificationsQueue,
  createOrderEventPublisher,
  createRedisConnection,
  toOrder,
  type OrderDocument,
  type OrderEvent,
} from '#common';
import { startWebhookReceiver, type WebhookReceiver } from '../../scripts/lib/webhook-receiver.js';
import { createNotificationMetrics } from '../../worker/notifications/notification-metrics.js';
import { createNotificationsWorker, oldestUndeliveredAt } from '../../worker/notifications/notifications-worker.js';
import { freePort } from '../../scripts/lib/embedded-services.js';
import { storedOrder } from '../helpers/orders.js';
import { testServices, uniqueName } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The delivery side of webhooks against real Redis and a real HTTP receiver on 127.0.0.1 that
 * verifies every request with the `standardwebhooks` library (scripts/lib/webhook-receiver.ts).
 */

const logger = createLogger({ service: 'test', level: 'silent' });
const SECRET = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;
// 12 retries doubling from 10 ms: 10, 20, 40 … 20 480 ms (with jitter 50–100 % of each).
const HORIZON_MS = 40_950;

async function setup(t: ExecutionContext, url: string, options: { timeoutMs?: number } = {}) {
  const { redisUrl } = await testServices();
  const prefix = uniqueName('hooks');
  const connection = createRedisConnection(redisUrl, { role: 'worker', connectionName: 'webhook-test' });
  const queue = createNotificationsQueue(connection, { prefix, retryHorizonMs: HORIZON_MS });
  const registry = new Registry();
  const metrics = createNotificationMetrics(registry, oldestUndeliveredAt(queue));
  const delivery = createNotificationsWorker({
    connection,
    prefix,
    workerId: 'test',
    webhook: {
      url,
      secrets: [SECRET],
      concurrency: 5,
      timeoutMs: options.timeoutMs ?? 2000,
      retryHorizonMs: HORIZON_MS,
      allowHttp: true,
    },
    publicOnly: false,
    metrics,
    logger,
  });
  await delivery.start();
  const publisher = createOrderEventPublisher({ queue, logger });
  t.teardown(async () => {
    await delivery.close(1000);
    const keys = await connection.keys(`${prefix}:*`);
    if (keys.length > 0) await connection.del(...keys);
    await queue.close();
    connection.disconnect();
  });
  return { queue, publisher, registry };
}

const terminal = (status: OrderDocument['status']) => toOrder(storedOrder(status));

async function failedIds(queue: Queue<OrderEvent>): Promise<string[]> {
  return (await queue.getFailed()).map((j) => j.id ?? '');
}

test('when the receiver answers 500 three times then 200, then it gets the event on the 4th try, same webhook-id, every try verified', async (t) => {
  const receiver = await startWebhookReceiver({ secret: SECRET, respond: ({ count }) => (count <= 3 ? 500 : 200) });
  t.teardown(() => receiver.close());
  const { queue, publisher, registry } = await setup(t, receiver.url);
  const order = terminal('PROCESSED');
  await publisher.publish(order);
  const done = await waitFor('the 4th delivery', async () => receiver.deliveries.find((d) => d.status === 200));
  t.is(receiver.deliveries.length, 4);
  t.deepEqual(
    receiver.deliveries.map((d) => d.status),
    [500, 500, 500, 200],
  );
  t.true(receiver.deliveries.every((d) => d.event !== undefined && d.webhookId === `${order.id}-processed`));
  t.is(done.event?.type, 'order.processed');
  t.is(done.event?.data.id, order.id);
  await waitFor('the job to complete', async () =>
    (await queue.getJobState(`${order.id}-processed`)) === 'completed' ? true : undefined,
  );
  const text = await registry.metrics();
  t.regex(text, /webhook_deliveries_total\{outcome="retry",status_class="5xx"\} 3/);
  t.regex(text, /webhook_deliveries_total\{outcome="delivered",status_class="2xx"\} 1/);
});

test('when the receiver answers 410, then delivery stops after one try and the event stays in the failed set', async (t) => {
  const receiver = await startWebhookReceiver({ secret: SECRET, respond: () => 410 });
  t.teardown(() => receiver.close());
  const { queue, publisher } = await setup(t, receiver.url);
  const order = terminal('REJECTED');
  await publisher.publish(order);
  await waitFor('the job to fail', async () => ((await failedIds(queue)).length === 1 ? true : undefined));
  await sleep(300); // time enough for retries (10, 20, 40 ms …) had there been any
  t.is(receiver.deliveries.length, 1);
  t.deepEqual(await failedIds(queue), [`${order.id}-rejected`]);
  t.is((await queue.getJob(`${order.id}-rejected`))?.attemptsMade, 1);
});

test('when the receiver is down for a while, then it gets every event once it is back, duplicates only with the same webhook-id', async (t) => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/webhooks`;
  const { queue, publisher } = await setup(t, url);
  const orders = ['PROCESSED', 'REJECTED', 'FAILED', 'CANCELLED', 'PROCESSED', 'FAILED'].map((s) =>
    terminal(s as OrderDocument['status']),
  );
  // Published at once, they go out as one addBulk, with one transition told twice inside it.
  await Promise.all([...orders, orders[1]!].map((o) => publisher.publish(o)));
  await publisher.publish(orders[0]!); // the same transition told again later: still one event
  await sleep(1500); // refused connections meanwhile: retries back off
  const receiver: WebhookReceiver = await startWebhookReceiver({ secret: SECRET, port });
  t.teardown(() => receiver.close());
  const expected = orders.map((o) => `${o.id}-${o.status.toLowerCase()}`).sort();
  await waitFor(
    'every event delivered',
    async () => (new Set(receiver.deliveries.map((d) => d.webhookId)).size === expected.length ? true : undefined),
    30_000,
  );
  t.deepEqual([...new Set(receiver.deliveries.map((d) => d.webhookId))].sort(), expected);
  t.true(
    receiver.deliveries.every((d) => d.event !== undefined),
    'every delivery verifies',
  );
  for (const d of receiver.deliveries) t.is(d.event?.type, `order.${d.event?.data.status.toLowerCase()}`);
  t.is(receiver.deliveries.length, expected.length, 'no duplicate without a failure to force it');
  t.deepEqual(await failedIds(queue), []);
});

test('when a receiver never answers, then each attempt ends at the timeout and the oldest undelivered age grows', async (t) => {
  const { createServer } = await import('node:net');
  const sockets: import('node:net').Socket[] = [];
  const silent = createServer((s) => sockets.push(s)); // accepts, never answers
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as import('node:net').AddressInfo).port;
  const { publisher, registry } = await setup(t, `http://127.0.0.1:${port}/webhooks`, { timeoutMs: 200 });
  await publisher.publish(terminal('FAILED'));
  await waitFor('two timed-out attempts', async () =>
    /outcome="retry",status_class="timeout"\} [2-9]/.test(await registry.metrics()) ? true : undefined,
  );
  const text = await registry.metrics();
  const age = Number(/webhook_oldest_undelivered_seconds(?:\{[^}]*\})? ([\d.]+)/.exec(text)?.[1]);
  t.true(age > 0.2, `age ${age}`);
  t.regex(text, /webhook_delivery_duration_seconds_bucket\{le="0.25"[^}]*\} [1-9]/);
});
