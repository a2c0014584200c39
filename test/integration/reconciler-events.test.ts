import test from 'ava';
import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import {
  DELIVER_EVENT_JOB,
  buildOrderEvent,
  createLogger,
  createNotificationsQueue,
  createOrdersQueue,
  createRedisConnection,
  toOrder,
  type OrderEvent,
} from '#common';
import { createOrderEventStore } from '../../worker/repositories/order-event-store.js';
import { createOrderJobStore } from '../../worker/repositories/order-job-store.js';
import { createReconcileRepository } from '../../worker/repositories/reconcile-repository.js';
import { createReconciler } from '../../worker/services/reconciler-service.js';
import { storedOrder } from '../helpers/orders.js';
import { openTestMongo, type TestMongo } from '../helpers/mongo.js';
import { testServices, uniqueName } from '../helpers/services.js';

/**
 * An order event lost between the order's end and its add to the `notifications` queue (the process
 * died in between): the reconciler, with real MongoDB and Redis, adds it again exactly once.
 */

const GRACE_MS = 1000;
const logger = createLogger({ service: 'test', level: 'silent' });

let db: TestMongo;
let redis: Redis;
let notifications: Queue<OrderEvent>;
let closeOrders: () => Promise<void>;
let makeReconciler: () => ReturnType<typeof createReconciler>;

test.before(async () => {
  db = await openTestMongo('reconciler_events');
  const services = await testServices();
  const prefix = uniqueName('reconciler_events');
  redis = createRedisConnection(services.redisUrl, { role: 'worker', connectionName: 'reconciler-events-test' });
  notifications = createNotificationsQueue(redis, { prefix });
  const orders = createOrdersQueue(redis, { prefix, jobAttempts: 3, jobBackoffMs: 1000 });
  closeOrders = () => orders.close();
  makeReconciler = () =>
    createReconciler({
      repository: createReconcileRepository({ models: db.models }),
      jobs: createOrderJobStore({ queue: orders, redis }),
      events: createOrderEventStore({ queue: notifications, redis }),
      eventLookBackMs: 60_000,
      onJobDead: () => Promise.resolve(true),
      logger,
      graceMs: GRACE_MS,
    });
});

test.after.always(async () => {
  await notifications?.obliterate({ force: true }).catch(() => undefined);
  await notifications?.close().catch(() => undefined);
  await closeOrders?.().catch(() => undefined);
  redis?.disconnect();
  await db?.close();
});

test.serial(
  'when an order reached PROCESSED without its event job, then one tick adds exactly that job and later ticks add nothing',
  async (t) => {
    const ended = new Date(Date.now() - 5 * GRACE_MS);
    const lost = storedOrder('PROCESSED', { updatedAt: ended, processedAt: ended }, ended);
    const published = storedOrder('PROCESSED', { updatedAt: ended, processedAt: ended }, ended);
    await db.models.Order.insertMany([lost, published]);
    // The other order's event was added by its publisher as usual.
    const publishedOrder = toOrder(published) as ReturnType<typeof toOrder> & { status: 'PROCESSED' };
    await notifications.add(DELIVER_EVENT_JOB, buildOrderEvent(publishedOrder), {
      jobId: `${published._id}-processed`,
    });

    const reconciler = makeReconciler();
    const first = await reconciler.tick();
    const afterFirst = await notifications.getJobCounts('waiting', 'delayed', 'completed', 'failed');
    const second = await reconciler.tick();
    // Another worker (or this one restarted) walks the whole window again: the existence check holds.
    const third = await makeReconciler().tick();
    const afterThird = await notifications.getJobCounts('waiting', 'delayed', 'completed', 'failed');

    t.is(first.eventReadded, 1);
    t.is(second.eventReadded, 0);
    t.is(third.eventReadded, 0);
    t.is(afterFirst.waiting, 2);
    t.deepEqual(afterThird, afterFirst);
    const job = await notifications.getJob(`${lost._id}-processed`);
    t.is(job?.name, DELIVER_EVENT_JOB);
    t.is(job?.data.type, 'order.processed');
    t.is(job?.data.data.id, lost._id);
  },
);
