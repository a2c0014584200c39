import test from 'ava';
import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import {
  createLogger,
  createOrdersQueue,
  createRedisConnection,
  orderMoves,
  transitionOrder,
  type ProcessOrderJobData,
} from '#common';
import { createOrderJobStore } from '../../worker/repositories/order-job-store.js';
import { createReconcileRepository } from '../../worker/repositories/reconcile-repository.js';
import { createReconciler } from '../../worker/services/reconciler-service.js';
import { storedOrder } from '../helpers/orders.js';
import { openTestMongo, type TestMongo } from '../helpers/mongo.js';
import { testServices, uniqueName } from '../helpers/services.js';

/**
 * A cancel whose job could not be queued (Redis away when the api cancelled): the order is marked
 * `compensationDue` by the cancel itself, and the reconciler, with real MongoDB and Redis, queues the
 * job of a marked order that still holds effects, and clears the mark of one that holds nothing.
 */

const GRACE_MS = 1000;
const logger = createLogger({ service: 'test', level: 'silent' });

let db: TestMongo;
let redis: Redis;
let orders: Queue<ProcessOrderJobData>;
let reconciler: ReturnType<typeof createReconciler>;

test.before(async () => {
  db = await openTestMongo('reconciler_compensations');
  const services = await testServices();
  redis = createRedisConnection(services.redisUrl, { role: 'worker', connectionName: 'reconciler-compensations-test' });
  orders = createOrdersQueue(redis, { prefix: uniqueName('reconciler_comp'), jobAttempts: 3, jobBackoffMs: 1000 });
  reconciler = createReconciler({
    repository: createReconcileRepository({ models: db.models }),
    jobs: createOrderJobStore({ queue: orders, redis }),
    onJobDead: () => Promise.resolve(true),
    logger,
    graceMs: GRACE_MS,
  });
});

test.after.always(async () => {
  await orders?.obliterate({ force: true }).catch(() => undefined);
  await orders?.close().catch(() => undefined);
  redis?.disconnect();
  await db?.close();
});

/** Stores a FAILED order (with `steps` when given) and cancels it through the named move, as the api does. */
async function cancelledOrder(steps?: Record<string, { status: string; at: Date; ref?: string }>) {
  const long = new Date(Date.now() - 10 * GRACE_MS);
  const doc = storedOrder('FAILED', { updatedAt: long, failedAt: long, ...(steps ? { steps } : {}) }, long);
  await db.models.Order.insertMany([doc]);
  const cancelled = await transitionOrder(db.models.Order, doc._id, orderMoves.cancel());
  if (!cancelled) throw new Error('the cancel did not move the order');
  // The cancel happened longer ago than the grace period.
  await db.models.Order.collection.updateOne({ _id: doc._id } as never, { $set: { updatedAt: long } });
  return doc._id;
}

const flagOf = async (id: string) =>
  ((await db.models.Order.collection.findOne({ _id: id } as never)) as { compensationDue?: boolean } | null)
    ?.compensationDue;

test.serial(
  'when a cancelled order still holds a charge and has no job, then one tick queues its job and later ticks add nothing',
  async (t) => {
    const at = new Date();
    const holding = await cancelledOrder({
      reserve: { status: 'done', at },
      charge: { status: 'done', at, ref: 'ch_1' },
    });
    t.true(await flagOf(holding), 'the cancel marked it');

    const first = await reconciler.tick();
    const job = await orders.getJob(holding);
    t.truthy(job, 'its job is queued');
    t.is(await job?.getState(), 'waiting');
    t.like(first, { compensationDue: 1 });
    t.true(await flagOf(holding), 'the mark stays until the worker has undone the effects');

    const second = await reconciler.tick();
    t.like(second, { compensationDue: 0 }, 'a queued job is left to run');
  },
);

test.serial('when a cancelled order holds nothing, then the tick clears its mark and queues nothing', async (t) => {
  const at = new Date();
  const settled = await cancelledOrder({ reserve: { status: 'compensated', at } });
  t.true(await flagOf(settled));

  const report = await reconciler.tick();

  t.is(await flagOf(settled), undefined);
  t.is(await orders.getJob(settled), undefined);
  t.like(report, { compensationDue: 0 });
});
