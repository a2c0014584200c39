import test from 'ava';
import {
  buildStepRecord,
  buildTransition,
  orderMoves,
  randomOrderId,
  type OrderDocument,
  type OrderModels,
  type OrderStatus,
} from '#common';
import { createWorkerOrderRepository } from '../../worker/repositories/order-repository.js';
import {
  createOrderStepsRepository,
  StepRecordRefusedError,
} from '../../worker/repositories/order-steps-repository.js';
import {
  batchedOrderUpdates,
  singleOrderUpdates,
  type ApplyOrderUpdate,
} from '../../worker/repositories/order-updates.js';
import { observedCollection, openTestMongo, type TestMongo } from '../helpers/mongo.js';
import { storedOrder } from '../helpers/orders.js';

// One database for this file; every test seeds its own orders, so the tests can run concurrently.
let db: TestMongo;
let models: OrderModels;

test.before(async () => {
  db = await openTestMongo('order_updates');
  models = db.models;
});

test.after.always(async () => {
  await db?.close();
});

async function seed(status: OrderStatus): Promise<string> {
  const doc = storedOrder(status, { attempts: 1 });
  await models.Order.collection.insertOne(doc as never);
  return doc._id;
}

async function stored(id: string): Promise<OrderDocument | null> {
  return (await models.Order.collection.findOne({ _id: id } as never)) as unknown as OrderDocument | null;
}

/** The real orders collection, counting the updates of each write it is asked for (one per round trip). */
const countedCollection = (writes: number[]) =>
  observedCollection(models.Order.collection, (_, [ops]) => writes.push(Array.isArray(ops) ? ops.length : 1), [
    'bulkWrite',
    'updateOne',
  ]);

const modes: ReadonlyArray<[string, (writes: number[]) => ApplyOrderUpdate]> = [
  ['batched', (writes) => batchedOrderUpdates(countedCollection(writes), { deadlineMs: 5000 })],
  ['one at a time', (writes) => singleOrderUpdates(countedCollection(writes))],
];

for (const [mode, make] of modes) {
  test(`${mode}: when concurrent checkpoints meet orders in and out of PROCESSING and a missing one, then each learns its own outcome and only the matching ones move`, async (t) => {
    const writes: number[] = [];
    const updates = make(writes);
    const processing = await Promise.all(Array.from({ length: 8 }, () => seed('PROCESSING')));
    const cancelled = await Promise.all(Array.from({ length: 3 }, () => seed('CANCELLED')));
    const missing = randomOrderId();
    const at = new Date();
    const checkpoint = (id: string) =>
      updates({ id, ...buildStepRecord({ step: 'reserve', action: 'done', status: 'PROCESSING', at }) });

    const ids = [...processing, ...cancelled, missing];
    const outcomes = await Promise.all(ids.map(checkpoint));

    t.deepEqual(outcomes, [...processing.map(() => true), ...cancelled.map(() => false), false]);
    for (const id of processing) {
      const doc = await stored(id);
      t.like(doc?.steps?.reserve, { status: 'done' });
      t.is(doc?.history.filter((h) => h.step === 'reserve').length, 1, 'one history entry per checkpoint');
    }
    for (const id of cancelled) {
      const doc = await stored(id);
      t.is(doc?.status, 'CANCELLED');
      t.is(doc?.steps?.reserve, undefined);
    }
    t.is(await stored(missing), null, 'an update of a missing order leaves no document behind');
    t.is(
      writes.reduce((a, b) => a + b, 0),
      ids.length,
    );
    if (mode === 'batched') t.true(writes.length < ids.length, `writes: ${JSON.stringify(writes)}`);
    else t.is(writes.length, ids.length);
  });

  test(`${mode}: when 20 completes of one order race, then exactly one moves it to PROCESSED`, async (t) => {
    const updates = make([]);
    const id = await seed('PROCESSING');

    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => updates({ id, ...buildTransition(orderMoves.complete()) })),
    );

    t.is(outcomes.filter(Boolean).length, 1);
    const doc = await stored(id);
    t.is(doc?.status, 'PROCESSED');
    t.is(doc?.history.filter((h) => h.status === 'PROCESSED').length, 1);
  });
}

test('batched: when an update finds its order missing while another of the batch matches, then the matching one moves and no stray document stays', async (t) => {
  const writes: number[] = [];
  const updates = batchedOrderUpdates(countedCollection(writes), { deadlineMs: 5000 });
  const id = await seed('PROCESSING');
  const missing = randomOrderId();
  const complete = (orderId: string) => updates({ id: orderId, ...buildTransition(orderMoves.complete()) });

  const [moved, none] = await Promise.all([complete(id), complete(missing)]);

  t.true(moved);
  t.false(none);
  t.is((await stored(id))?.status, 'PROCESSED');
  t.is(await stored(missing), null);
  t.is(await models.Order.collection.countDocuments({ _id: missing } as never), 0);
});

test('batched: when the saga records steps and the repository completes and rejects through the shared group commit, then each move is as exact as alone', async (t) => {
  const writes: number[] = [];
  const updates = batchedOrderUpdates(countedCollection(writes), { deadlineMs: 5000 });
  const steps = createOrderStepsRepository({ models, updates });
  const repository = createWorkerOrderRepository({ models, updates });
  const [a, b, c] = await Promise.all([seed('PROCESSING'), seed('PROCESSING'), seed('FAILED')]);
  const cancelled = await seed('CANCELLED');

  await Promise.all([steps.checkpoint(a, 'reserve'), steps.checkpoint(b, 'reserve', 'r1')]);
  await t.throwsAsync(steps.checkpoint(cancelled, 'charge'), { instanceOf: StepRecordRefusedError });
  // A compensation is recorded in the first of its statuses the order is in (FAILED here, not PROCESSING).
  await steps.compensated(c, 'reserve');
  const [completed, rejected, late] = await Promise.all([
    repository.complete(a),
    repository.reject(b, 'OUT_OF_STOCK', 'sku-1'),
    repository.complete(cancelled),
  ]);

  t.deepEqual([completed, rejected, late], [true, true, false]);
  t.is((await stored(a))?.status, 'PROCESSED');
  t.is((await stored(b))?.status, 'REJECTED');
  t.like((await stored(b))?.steps?.reserve, { status: 'done', ref: 'r1' });
  t.like((await stored(c))?.steps?.reserve, { status: 'compensated' });
  t.is((await stored(cancelled))?.status, 'CANCELLED');
});
