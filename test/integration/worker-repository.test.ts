import test from 'ava';
import {
  DEAD_JOB_RETRIED_REASON,
  HISTORY_LIMIT,
  randomOrderId,
  transitionOrder,
  type OrderDocument,
  type OrderModels,
  type OrderStatus,
} from '#common';
import { createOrderRepository } from '../../api/repositories/order-repository.js';
import { createWorkerOrderRepository, type WorkerOrderRepository } from '../../worker/repositories/order-repository.js';
import { storedOrder } from '../helpers/orders.js';
import { observedCollection, openTestMongo, type TestMongo } from '../helpers/mongo.js';

// One database for this file; every test seeds its own orders, so the tests can run concurrently.
let db: TestMongo;
let models: OrderModels;
let orders: WorkerOrderRepository;
/** The same repository with the worker's group commit of effects (WORKER_BATCH_WRITES=on). */
let batched: WorkerOrderRepository;

test.before(async () => {
  db = await openTestMongo('worker_repository');
  models = db.models;
  orders = createWorkerOrderRepository({ models });
  batched = createWorkerOrderRepository({ models, effectBatch: { deadlineMs: 5000 } });
});

test.after.always(async () => {
  await db?.close();
});

/** A stored order as the api would have written it, in `status`, with `overrides` applied. */
const orderDocument = (status: OrderStatus, overrides: Partial<OrderDocument> = {}) => storedOrder(status, overrides);

async function seed(status: OrderStatus, overrides: Partial<OrderDocument> = {}): Promise<string> {
  const doc = orderDocument(status, overrides);
  await models.Order.collection.insertOne(doc as never);
  return doc._id;
}

/** The stored document as MongoDB holds it, bypassing the mapper. */
async function stored(id: string): Promise<OrderDocument> {
  const doc = await models.Order.collection.findOne({ _id: id } as never);
  if (!doc) throw new Error(`order ${id} is not stored`);
  return doc as unknown as OrderDocument;
}

test('when 50 claims race for one PENDING order, then exactly one moves it out of PENDING and each claim counts once', async (t) => {
  const id = await seed('PENDING');

  const results = await Promise.all(Array.from({ length: 50 }, () => orders.claim(id, 1)));

  // docs/design.md allows PROCESSING -> PROCESSING (reclaim), so later claims succeed as reclaims; what the
  // single conditional update guarantees is that no increment is lost and one claim saw PENDING.
  t.true(results.every((r) => r !== null));
  const attempts = results.map((r) => r?.attempts ?? 0).sort((a, b) => a - b);
  t.deepEqual(
    attempts,
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  const first = results.find((r) => r?.attempts === 1);
  t.deepEqual(
    first?.history.map((h) => h.status),
    ['PENDING', 'PROCESSING'],
  );
  const doc = await stored(id);
  t.is(doc.status, 'PROCESSING');
  t.is(doc.attempts, 50);
});

test('when 50 PENDING -> PROCESSING moves race through the conditional update, then exactly one wins with attempts 1', async (t) => {
  const id = await seed('PENDING');
  const results = await Promise.all(
    Array.from({ length: 50 }, () =>
      transitionOrder(models.Order, id, { to: 'PROCESSING', from: ['PENDING'], jobAttempt: 1 }),
    ),
  );

  const winners = results.filter((r) => r !== null);
  t.is(winners.length, 1);
  t.is(winners[0]?.attempts, 1);
  const doc = await stored(id);
  t.is(doc.status, 'PROCESSING');
  t.is(doc.attempts, 1);
  t.deepEqual(
    doc.history.filter((h) => h.status === 'PROCESSING').map((h) => h.attempt),
    [1],
  );
});

test('when a FAILED order is claimed by a fresh series, then it moves to PROCESSING and attempts grows by one', async (t) => {
  const failedAt = new Date(Date.now() - 30_000);
  const id = await seed('FAILED', {
    attempts: 5,
    lastError: 'boom',
    failedAt,
    history: [
      { status: 'PENDING', at: failedAt },
      { status: 'FAILED', at: failedAt, reason: 'boom' },
    ],
  });

  t.is(await orders.claim(id, 1), null, 'the ordinary claim leaves a dead order alone');
  const claimed = await orders.claimDead(id, 1);

  t.is(claimed?.status, 'PROCESSING');
  t.is(claimed?.attempts, 6);
  const last = claimed?.history.at(-1);
  t.is(last?.status, 'PROCESSING');
  t.is(last?.attempt, 1);
  t.is(last?.reason, DEAD_JOB_RETRIED_REASON);
  t.is((await stored(id)).status, 'PROCESSING');
});

test('when a PROCESSING order is claimed again, then the reclaim adds one to attempts', async (t) => {
  const id = await seed('PROCESSING', { attempts: 1 });

  const claimed = await orders.claim(id, 2);

  t.is(claimed?.status, 'PROCESSING');
  t.is(claimed?.attempts, 2);
  t.like(claimed?.history.at(-1), { status: 'PROCESSING', attempt: 2 });
});

for (const status of ['PROCESSED', 'CANCELLED'] as const) {
  test(`when a ${status} order is claimed, then the claim returns null and changes nothing`, async (t) => {
    const id = await seed(status, { attempts: 1 });
    const before = await stored(id);

    const claimed = await orders.claim(id, 2);

    t.is(claimed, null);
    t.deepEqual(await stored(id), before);
  });
}

test('when a missing order is claimed, then the claim returns null and creates nothing', async (t) => {
  const id = randomOrderId();

  t.is(await orders.claim(id, 1), null);
  t.is(await models.Order.countDocuments({ _id: id }), 0);
});

test('when complete is asked of an order not PROCESSING, then it returns false and changes nothing', async (t) => {
  for (const status of ['PENDING', 'FAILED', 'PROCESSED', 'CANCELLED'] as const) {
    const id = await seed(status);
    const before = await stored(id);
    t.false(await orders.complete(id), status);
    t.deepEqual(await stored(id), before, status);
  }
});

test('when a PROCESSING order is completed, then it is PROCESSED with processedAt set', async (t) => {
  const id = await seed('PROCESSING', { attempts: 1 });

  t.true(await orders.complete(id));
  const done = await orders.findById(id);

  t.is(done?.status, 'PROCESSED');
  t.true(done?.processedAt instanceof Date);
  t.is(done?.history.at(-1)?.status, 'PROCESSED');
  t.is(done?.attempts, 1, 'completing is not an attempt');
});

test('when a retry is scheduled, then the order is PENDING with lastError and the reason in history', async (t) => {
  const id = await seed('PROCESSING', { attempts: 1 });

  const retried = await orders.scheduleRetry(id, 'temporary outage');

  t.is(retried?.status, 'PENDING');
  t.is(retried?.lastError, 'temporary outage');
  t.like(retried?.history.at(-1), { status: 'PENDING', reason: 'temporary outage' });
  t.is(retried?.attempts, 1);
  t.is(retried?.failedAt, null);
});

test('when a retry is scheduled for an order not PROCESSING, then nothing changes', async (t) => {
  const id = await seed('PENDING');
  const before = await stored(id);

  t.is(await orders.scheduleRetry(id, 'late'), null);
  t.deepEqual(await stored(id), before);
});

test('when an order fails, then it is FAILED with failedAt and lastError', async (t) => {
  const id = await seed('PROCESSING', { attempts: 3 });

  const failed = await orders.fail(id, 'attempts exhausted');

  t.is(failed?.status, 'FAILED');
  t.true(failed?.failedAt instanceof Date);
  t.is(failed?.lastError, 'attempts exhausted');
  t.like(failed?.history.at(-1), { status: 'FAILED', reason: 'attempts exhausted' });
  t.is(failed?.processedAt, null);
});

test('when fail is asked of a PENDING order, then nothing changes (PENDING -> FAILED is illegal)', async (t) => {
  const id = await seed('PENDING');
  const before = await stored(id);

  t.is(await orders.fail(id, 'stalled'), null);
  t.deepEqual(await stored(id), before);
});

// What onJobDead (worker/services/order-processing-service.ts) does for a job that stalled out.
test('when fail is asked of a PROCESSING order, then it becomes FAILED with lastError', async (t) => {
  const id = await seed('PROCESSING', { attempts: 1 });

  const failed = await orders.fail(id, 'job stalled more than allowable limit');

  t.is(failed?.status, 'FAILED');
  t.is(failed?.lastError, 'job stalled more than allowable limit');
});

/** The effect tests run against both ways of writing effects: one insert each, and the group commit. */
const effectModes = [
  ['one insert each', () => orders],
  ['group commit', () => batched],
] as const;

for (const [mode, repository] of effectModes) {
  test(`when the effect of an order is recorded twice, then the second call records nothing (${mode})`, async (t) => {
    const id = await seed('PROCESSING', { attempts: 1 });
    const effect = { orderId: id, totalCents: 2500, currency: 'EUR', jobAttempt: 1, jobId: id };

    t.true(await repository().recordEffect(effect));
    t.false(await repository().recordEffect({ ...effect, jobAttempt: 2, jobId: `${id}-again` }));

    const effects = await models.Effect.collection.find({ _id: id } as never).toArray();
    t.is(effects.length, 1);
    t.like(effects[0], { _id: id, totalCents: 2500, currency: 'EUR', attempt: 1, jobId: id });
  });

  test(`when concurrent calls record one effect, then exactly one of them records it (${mode})`, async (t) => {
    const id = await seed('PROCESSING', { attempts: 1 });

    const recorded = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        repository().recordEffect({ orderId: id, totalCents: 2500, currency: 'EUR', jobAttempt: i + 1, jobId: id }),
      ),
    );

    t.is(recorded.filter(Boolean).length, 1);
    t.is(await models.Effect.countDocuments({ _id: id }), 1);
  });
}

test('when the effects of many orders are recorded at once in a group commit, then each order gets its own outcome', async (t) => {
  const ids = await Promise.all(Array.from({ length: 10 }, () => seed('PROCESSING', { attempts: 1 })));
  const [already] = ids;
  t.true(
    await batched.recordEffect({ orderId: already, totalCents: 1, currency: 'EUR', jobAttempt: 1, jobId: already }),
  );

  // Three attempts per order, interleaved, so batches mix orders, repeats and one already recorded.
  const calls = ids.flatMap((id) => [1, 2, 3].map((jobAttempt) => ({ id, jobAttempt })));
  const recorded = await Promise.all(
    calls.map(({ id, jobAttempt }) =>
      batched.recordEffect({ orderId: id, totalCents: 2500, currency: 'EUR', jobAttempt, jobId: id }),
    ),
  );

  for (const id of ids) {
    const mine = recorded.filter((_, i) => calls[i].id === id && recorded[i]);
    t.is(mine.length, id === already ? 0 : 1, id);
  }
  t.is(await models.Effect.collection.countDocuments({ _id: { $in: ids } } as never), ids.length);
  t.like(await models.Effect.collection.findOne({ _id: already } as never), { totalCents: 1 });
});

test('when an order makes more transitions than the history keeps, then the newest entries are kept', async (t) => {
  const id = await seed('PENDING');
  const rounds = 30; // 1 + 2 * 30 = 61 entries written

  for (let attempt = 1; attempt <= rounds; attempt += 1) {
    t.not(await orders.claim(id, attempt), null);
    t.not(await orders.scheduleRetry(id, `retry ${attempt}`), null);
  }

  const doc = await stored(id);
  t.is(doc.history.length, HISTORY_LIMIT);
  t.is(doc.attempts, rounds);
  // Entry k of the full history (0 = initial PENDING) is PROCESSING(a) for k = 2a-1 and PENDING(retry a)
  // for k = 2a; the last 50 of 61 start at k = 11, i.e. PROCESSING of attempt 6.
  t.like(doc.history[0], { status: 'PROCESSING', attempt: 6 });
  t.like(doc.history.at(-2), { status: 'PROCESSING', attempt: rounds });
  t.like(doc.history.at(-1), { status: 'PENDING', reason: `retry ${rounds}` });
  const times = doc.history.map((h) => new Date(h.at).getTime());
  t.deepEqual(
    times,
    [...times].sort((a, b) => a - b),
  );
});

test('when 50 cancels race through the api repository, then exactly one wins', async (t) => {
  const id = await seed('PENDING');
  const apiOrders = createOrderRepository({ models });

  const results = await Promise.all(Array.from({ length: 50 }, () => apiOrders.cancel(id)));

  t.is(results.filter((r) => r !== null).length, 1);
  const doc = await stored(id);
  t.is(doc.status, 'CANCELLED');
  t.deepEqual(
    doc.history.map((h) => h.status),
    ['PENDING', 'CANCELLED'],
  );
  // A terminal order cannot be claimed afterwards.
  t.is(await orders.claim(id, 1), null);
});

test('when the effects of concurrent jobs are recorded in a group commit, then they share inserts; one at a time, each is its own', async (t) => {
  const inserts: number[] = [];
  // The real collection, counting the documents of each insert it is asked for (one per round trip).
  const collection = observedCollection(
    models.Effect.collection,
    (_, [docs]) => inserts.push(Array.isArray(docs) ? docs.length : 1),
    ['insertMany', 'insertOne'],
  );
  const counted = createWorkerOrderRepository({
    models: { ...models, Effect: { collection } as unknown as OrderModels['Effect'] },
    effectBatch: { deadlineMs: 5000 },
  });
  const ids = await Promise.all(Array.from({ length: 10 }, () => seed('PROCESSING', { attempts: 1 })));
  const effect = (id: string) => ({ orderId: id, totalCents: 100, currency: 'EUR', jobAttempt: 1, jobId: id });

  const recorded = await Promise.all(ids.map((id) => counted.recordEffect(effect(id))));

  t.deepEqual(
    recorded,
    ids.map(() => true),
  );
  t.is(
    inserts.reduce((a, b) => a + b, 0),
    10,
  );
  t.true(inserts.length < 10, `inserts: ${JSON.stringify(inserts)}`);

  // A lone effect on an idle batcher is written at once, alone.
  inserts.length = 0;
  const lone = await seed('PROCESSING', { attempts: 1 });
  t.true(await counted.recordEffect(effect(lone)));
  t.deepEqual(inserts, [1]);
});

test('when the orders of several ids are read at once, then one find returns each stored one as findById does, and leaves the missing out', async (t) => {
  const ids = await Promise.all([
    seed('PROCESSED'),
    seed('REJECTED', { rejectionReason: 'OUT_OF_STOCK' }),
    seed('FAILED'),
  ]);
  const missing = randomOrderId();
  const finds: number[] = [];
  const counted = createWorkerOrderRepository({
    models: {
      ...models,
      // Only the collection is read by findByIds.
      Order: {
        collection: observedCollection(models.Order.collection, () => finds.push(1), ['find']),
      } as unknown as typeof models.Order,
    },
  });

  const found = await counted.findByIds([...ids, missing]);

  t.is(finds.length, 1, 'one find for all of them');
  t.deepEqual([...found.keys()].sort(), [...ids].sort());
  for (const id of ids) t.deepEqual(found.get(id), await orders.findById(id));
  t.false(found.has(missing));
  t.deepEqual([...(await counted.findByIds([ids[0]])).values()], [await orders.findById(ids[0])], 'a lone id');
  t.is((await counted.findByIds([missing])).size, 0);
  t.is((await counted.findByIds([])).size, 0);
});
