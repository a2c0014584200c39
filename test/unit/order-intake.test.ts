import test from 'ava';
import { AppError, createLogger, toOrder, type Order } from '#common';
import { createEnqueueMarks } from '../../api/repositories/enqueue-marks.js';
import { createFakeOrderJobs } from '../../api/repositories/fake-order-jobs.js';
import { createFakeOrderRepository } from '../../api/repositories/fake-order-repository.js';
import { createGroupCommitIntake } from '../../api/repositories/order-intake.js';
import { DuplicateOrderError } from '../../api/repositories/order-repository.js';
import { createOrderService } from '../../api/services/order-service.js';
import { storedOrder } from '../helpers/orders.js';

const logger = createLogger({ service: 'test', level: 'silent' });
const INPUT = { customerId: 'c-1', items: [{ sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 }], currency: 'EUR' };
const OPTIONS = { maxBatch: 100, maxWaiting: 1000, insertDeadlineMs: 60_000, enqueueDeadlineMs: 60_000 };

/**
 * Group commit over the in-memory repository and jobs, with the first write of each kind held until
 * the test lets it go, so the requests made meanwhile share the next batch.
 */
function build(options: Partial<typeof OPTIONS> = {}) {
  const repository = createFakeOrderRepository();
  const jobs = createFakeOrderJobs();
  const insertBatches: string[][] = [];
  const addBatches: string[][] = [];
  const events: string[] = [];
  let releaseFirstInsert: () => void = () => undefined;
  const firstInsertHeld = new Promise<void>((resolve) => {
    releaseFirstInsert = resolve;
  });
  const intake = createGroupCommitIntake({
    repository: {
      async insertMany(orders) {
        insertBatches.push(orders.map((o) => o.id));
        if (insertBatches.length === 1) await firstInsertHeld;
        const outcomes = await repository.insertMany(orders);
        for (const o of orders) events.push(`insert ${o.id}`);
        return outcomes;
      },
    },
    jobs: {
      async enqueueMany(batch) {
        addBatches.push(batch.map((j) => j.order.id));
        await jobs.enqueueMany(batch);
        for (const j of batch) events.push(`add ${j.order.id}`);
      },
    },
    options: { ...OPTIONS, ...options },
  });
  const marks = createEnqueueMarks({
    write: async (ids, at) => {
      for (const id of ids) events.push(`mark ${id}`);
      await repository.markEnqueued(ids, at);
    },
    logger,
    windowMs: 0,
  });
  const service = createOrderService({ repository, jobs, intake, marks, logger });
  const create = (key?: string, input: typeof INPUT = INPUT) =>
    service.create({ input, idempotencyKey: key, scope: 'shop', correlationId: 'corr' });
  return { repository, jobs, insertBatches, addBatches, events, releaseFirstInsert, intake, marks, create };
}

/** Resolves once `check` holds, looking after each turn of the event loop (the batcher starts a write at a turn's end). */
async function until(check: () => boolean): Promise<void> {
  for (let turn = 0; !check(); turn += 1) {
    if (turn > 1000) throw new Error('the condition never held');
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

test('when requests arrive while a write is in flight, then they share one insert and one add, and each gets its own order', async (t) => {
  const rig = build();
  const first = rig.create();
  await until(() => rig.insertBatches.length === 1);
  const others = Array.from({ length: 5 }, () => rig.create());

  rig.releaseFirstInsert();
  const results = await Promise.all([first, ...others]);
  await rig.intake.drain();
  await rig.marks.drain();

  t.deepEqual(
    rig.insertBatches.map((b) => b.length),
    [1, 5],
  );
  t.is(rig.addBatches.flat().length, 6);
  t.true(rig.addBatches.length < 6, `adds batched: ${JSON.stringify(rig.addBatches.map((b) => b.length))}`);
  t.deepEqual(
    results.map((r) => r.outcome),
    Array.from({ length: 6 }, () => 'created'),
  );
  t.is(new Set(results.map((r) => r.order.id)).size, 6);
  for (const { order } of results) {
    const mine = rig.events.filter((e) => e.endsWith(` ${order.id}`));
    t.deepEqual(mine, [`insert ${order.id}`, `add ${order.id}`, `mark ${order.id}`], 'outbox order per order');
  }
});

test('when two requests with one key share a batch, then the batch writes the order once and the second is replayed', async (t) => {
  const rig = build();
  const blocker = rig.create();
  await until(() => rig.insertBatches.length === 1);
  const a = rig.create('same-key');
  const b = rig.create('same-key');

  rig.releaseFirstInsert();
  await blocker;
  const [ra, rb] = await Promise.all([a, b]);

  t.is(rig.insertBatches[1].length, 1, 'deduped inside the batch: one id sent');
  t.deepEqual([ra.outcome, rb.outcome].sort(), ['created', 'replayed']);
  t.is(ra.order.id, rb.order.id);
  t.is(rig.repository.orders.size, 2);
  t.is([...rig.jobs.jobs.keys()].filter((id) => id === ra.order.id).length, 1);
});

test('when two requests with one key but different bodies share a batch, then the second gets IDEMPOTENCY_KEY_REUSED', async (t) => {
  const rig = build();
  const blocker = rig.create();
  await until(() => rig.insertBatches.length === 1);
  const a = rig.create('k');
  const b = rig.create('k', { ...INPUT, currency: 'USD' });
  rig.releaseFirstInsert();
  await blocker;

  t.is((await a).outcome, 'created');
  const err = await t.throwsAsync(b, { instanceOf: AppError });
  t.is(err?.code, 'IDEMPOTENCY_KEY_REUSED');
});

test('when one order of a batch already exists, then only that request goes to its replay; the others are created', async (t) => {
  const rig = build();
  const existing = await (async () => {
    rig.releaseFirstInsert();
    return (await rig.create('old')).order;
  })();

  const results = await Promise.all([rig.create('new-1'), rig.create('old'), rig.create('new-2')]);

  t.deepEqual(
    results.map((r) => r.outcome),
    ['created', 'replayed', 'created'],
  );
  t.is(results[1].order.id, existing.id);
});

test('when the batch add fails (Redis away), then each of its requests takes its own 202 path and the orders stay stored', async (t) => {
  const rig = build();
  rig.jobs.setDown(true);
  rig.releaseFirstInsert();

  const results = await Promise.all(Array.from({ length: 4 }, () => rig.create()));

  t.deepEqual(
    results.map((r) => r.outcome),
    Array.from({ length: 4 }, () => 'accepted_unqueued'),
  );
  for (const { order } of results) t.is(rig.repository.orders.get(order.id)?.enqueuedAt, null);
});

test('when the database never answers, then every waiting request is answered SERVICE_UNAVAILABLE by its deadline and nothing is queued', async (t) => {
  const rig = build({ insertDeadlineMs: 30 });
  // The first insert stays held (a frozen MongoDB) for the whole test.
  const first = rig.create();
  await until(() => rig.insertBatches.length === 1);
  const results = await Promise.allSettled([first, ...Array.from({ length: 4 }, () => rig.create())]);

  for (const r of results) {
    t.is(r.status, 'rejected');
    if (r.status === 'rejected') t.is((r.reason as AppError).code, 'SERVICE_UNAVAILABLE');
  }
  t.deepEqual(rig.insertBatches, [[rig.insertBatches[0][0]]], 'the waiters were never written');
  t.is(rig.jobs.jobs.size, 0);
  rig.releaseFirstInsert();
});

test('when too many requests wait, then the extra ones are refused SERVICE_UNAVAILABLE at once (back-pressure)', async (t) => {
  const rig = build({ maxWaiting: 3 });
  const first = rig.create();
  await until(() => rig.insertBatches.length === 1);
  const waiting = Array.from({ length: 3 }, () => rig.create());

  const refused = await t.throwsAsync(rig.create(), { instanceOf: AppError });

  t.is(refused?.code, 'SERVICE_UNAVAILABLE');
  rig.releaseFirstInsert();
  t.is((await Promise.all([first, ...waiting])).length, 4);
  t.is(rig.repository.orders.size, 4);
});

test('when the repository reports one order of a batch as a duplicate, then only that order gets DuplicateOrderError', async (t) => {
  const repository = createFakeOrderRepository([toOrder(storedOrder('PENDING', { _id: 'ord_b' }))]);
  const intake = createGroupCommitIntake({
    repository,
    jobs: createFakeOrderJobs(),
    options: OPTIONS,
  });
  const order = (id: string): Order => toOrder(storedOrder('PENDING', { _id: id, enqueuedAt: null }));

  const [a, b, c] = await Promise.allSettled(['ord_a', 'ord_b', 'ord_c'].map((id) => intake.insert(order(id))));

  t.is(a.status, 'fulfilled');
  t.is(b.status, 'rejected');
  t.true(b.status === 'rejected' && b.reason instanceof DuplicateOrderError);
  t.is(c.status, 'fulfilled');
});
