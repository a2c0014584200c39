import test from 'ava';
import { createLogger, toOrder, type Order, type OrderDocument, type OrderStatus } from '#common';
import { createFakeOrderEventStore } from '../../worker/repositories/fake-order-event-store.js';
import { createFakeOrderJobStore } from '../../worker/repositories/fake-order-job-store.js';
import { createFakeReconcileRepository } from '../../worker/repositories/fake-reconcile-repository.js';
import { createReconciler } from '../../worker/services/reconciler-service.js';
import { storedOrder } from '../helpers/orders.js';

const logger = createLogger({ service: 'test', level: 'silent' });
const NOW = new Date('2026-01-01T12:00:00Z');
const GRACE_MS = 60_000;
const OLD = new Date(NOW.getTime() - 10 * GRACE_MS);

const order = (status: OrderStatus, overrides: Partial<OrderDocument> = {}) =>
  toOrder(storedOrder(status, { updatedAt: OLD, ...overrides }, OLD));

function build(
  seed: Order[],
  jobs: Parameters<typeof createFakeOrderJobStore>[0] = {},
  bounds: Partial<Parameters<typeof createReconciler>[0]> = {},
) {
  const repository = createFakeReconcileRepository(seed);
  const store = createFakeOrderJobStore(jobs);
  const dead: string[] = [];
  const reconciler = createReconciler({
    repository,
    jobs: store,
    onJobDead: (orderId) => {
      dead.push(orderId);
      return Promise.resolve(true);
    },
    logger,
    graceMs: GRACE_MS,
    now: () => NOW,
    ...bounds,
  });
  return { reconciler, repository, store, dead };
}

test('when a PENDING order was never enqueued, then its job is added and enqueuedAt recorded', async (t) => {
  const o = order('PENDING', { enqueuedAt: null });
  const { reconciler, repository, store } = build([o], {});

  const report = await reconciler.tick();

  t.like(report, { unqueued: 1, reenqueued: 1, missingJob: 0, truncated: false });
  t.is(store.jobs.get(o.id), 'queued');
  t.deepEqual(repository.orders.get(o.id)?.enqueuedAt, NOW);
});

test('when an unqueued order is younger than the grace period, then it is left to the api', async (t) => {
  const young = new Date(NOW.getTime() - GRACE_MS / 2);
  const o = toOrder(storedOrder('PENDING', { enqueuedAt: null }, young));
  const { reconciler, store } = build([o]);

  const report = await reconciler.tick();

  t.is(report.unqueued, 0);
  t.false(store.jobs.has(o.id));
});

for (const status of ['PENDING', 'PROCESSING'] as const) {
  test(`when a ${status} order's job is missing from Redis, then it is added again`, async (t) => {
    const o = order(status);
    const { reconciler, store } = build([o]);

    const report = await reconciler.tick();

    t.like(report, { missingJob: 1, reenqueued: 1, scanned: 1 });
    t.is(store.jobs.get(o.id), 'queued');
  });
}

test('when an in-flight order has its job queued, then nothing is done', async (t) => {
  const o = order('PENDING');
  const { reconciler, store, dead } = build([o], { [o.id]: 'queued' });

  const report = await reconciler.tick();

  t.like(report, { missingJob: 0, failedJob: 0, reenqueued: 0, scanned: 1 });
  t.deepEqual(store.retried, []);
  t.deepEqual(dead, []);
});

test('when a PENDING order has a failed job, then the job is retried and the order is not marked dead', async (t) => {
  const o = order('PENDING');
  const { reconciler, store, dead } = build([o], { [o.id]: 'failed' });

  const report = await reconciler.tick();

  t.like(report, { failedJob: 1, reenqueued: 1 });
  t.deepEqual(store.retried, [o.id]);
  t.deepEqual(dead, []);
});

test('when a PROCESSING order has a failed job, then it goes down onJobDead and its job stays dead', async (t) => {
  const o = order('PROCESSING', { attempts: 1 });
  const { reconciler, store, dead } = build([o], { [o.id]: 'failed' });

  const report = await reconciler.tick();

  t.like(report, { failedJob: 1, reenqueued: 0 });
  t.deepEqual(dead, [o.id]);
  t.deepEqual(store.retried, []);
});

// --- cancelled orders that still hold effects (compensationDue) -----------------------------------

const HOLDING = { reserve: { status: 'done', at: OLD }, charge: { status: 'done', at: OLD, ref: 'ch_1' } };
const cancelled = (overrides: Partial<OrderDocument> = {}) =>
  order('CANCELLED', { compensationDue: true, ...overrides });

test('when a cancelled order still holds effects and its job is missing, then its job is added so the worker undoes them', async (t) => {
  const o = cancelled({ steps: HOLDING });
  const { reconciler, store, repository } = build([o]);

  const report = await reconciler.tick();

  t.like(report, { compensationDue: 1, reenqueued: 1 });
  t.is(store.jobs.get(o.id), 'queued');
  t.true(repository.orders.get(o.id)?.compensationDue, 'the worker clears the mark once it has undone them');
});

test('when a cancelled order still holds effects and its job is dead, then the job is retried', async (t) => {
  const o = cancelled({ steps: HOLDING });
  const { reconciler, store } = build([o], { [o.id]: 'failed' });

  const report = await reconciler.tick();

  t.like(report, { compensationDue: 1 });
  t.deepEqual(store.retried, [o.id]);
});

test('when a cancelled order still holds effects and its job is queued, then it is left to run', async (t) => {
  const o = cancelled({ steps: HOLDING });
  const { reconciler, store } = build([o], { [o.id]: 'queued' });

  t.like(await reconciler.tick(), { compensationDue: 0, reenqueued: 0 });
  t.deepEqual(store.retried, []);
});

test('when a cancelled order holds nothing, or was cancelled within the grace period, then no job is queued; only the first loses its mark', async (t) => {
  const settled = cancelled({ steps: { reserve: { status: 'compensated', at: OLD } } });
  const recent = cancelled({ steps: HOLDING, updatedAt: new Date(NOW.getTime() - GRACE_MS / 2) });
  const { reconciler, store, repository } = build([settled, recent]);

  t.like(await reconciler.tick(), { compensationDue: 0, reenqueued: 0 });
  t.is(store.jobs.size, 0);
  t.is(repository.orders.get(settled.id)?.compensationDue, undefined);
  t.true(repository.orders.get(recent.id)?.compensationDue);
});

test('when more unqueued orders wait than one batch, then the tick takes one batch and says it was truncated', async (t) => {
  const orders = Array.from({ length: 5 }, (_, i) =>
    order('PENDING', { enqueuedAt: null, createdAt: new Date(OLD.getTime() + i) }),
  );
  const { reconciler, store } = build(orders, {}, { batchSize: 3 });

  const report = await reconciler.tick();

  t.true(report.truncated);
  t.is(report.unqueued, 3);
  // The same tick's walk over PENDING orders finds the other two with no job, and adds them too.
  t.is(report.missingJob, 2);
  t.is(store.jobs.size, 5);
});

test('when more in-flight orders exist than the pages allow, then the walk stops there and says it was truncated', async (t) => {
  const orders = Array.from({ length: 7 }, (_, i) => order('PROCESSING', { updatedAt: new Date(OLD.getTime() + i) }));
  const queued = Object.fromEntries(orders.map((o) => [o.id, 'queued' as const]));
  const { reconciler } = build(orders, queued, { batchSize: 2, maxPages: 2 });

  const report = await reconciler.tick();

  t.true(report.truncated);
  t.is(report.scanned, 4);
});

test('when the in-flight orders fit in the pages, then every one is scanned and the tick is not truncated', async (t) => {
  const orders = Array.from({ length: 5 }, (_, i) => order('PENDING', { updatedAt: new Date(OLD.getTime() + i) }));
  const queued = Object.fromEntries(orders.map((o) => [o.id, 'queued' as const]));
  const { reconciler } = build(orders, queued, { batchSize: 2, maxPages: 3 });

  const report = await reconciler.tick();

  t.false(report.truncated);
  t.is(report.scanned, 5);
});

const LOOK_BACK_MS = 5 * GRACE_MS;
/** Ended this long ago: past the grace period, inside the look-back window. */
const RECENT = new Date(NOW.getTime() - 2 * GRACE_MS);

function buildWithEvents(seed: Order[], events: readonly string[] = [], bounds = {}) {
  const store = createFakeOrderEventStore(events);
  return { ...build(seed, {}, { events: store, eventLookBackMs: LOOK_BACK_MS, ...bounds }), events: store };
}

for (const status of ['PROCESSED', 'REJECTED', 'FAILED', 'CANCELLED'] as const) {
  test(`when webhooks are on and a ${status} order has no event job, then one tick adds it once and the next adds nothing`, async (t) => {
    const o = order(status, { updatedAt: RECENT });
    const { reconciler, events } = buildWithEvents([o]);

    const first = await reconciler.tick();
    const second = await reconciler.tick();

    t.is(first.eventReadded, 1);
    t.is(second.eventReadded, 0);
    t.deepEqual(events.added, [`${o.id}-${status.toLowerCase()}`]);
  });
}

test('when an ended order already has its event job (added by its publisher, or by another worker), then nothing is added or counted', async (t) => {
  const o = order('PROCESSED', { updatedAt: RECENT });
  const { reconciler, events } = buildWithEvents([o], [`${o.id}-processed`]);

  const report = await reconciler.tick();

  t.is(report.eventReadded, 0);
  t.deepEqual(events.added, []);
});

test('when an order ended within the grace period or before the look-back window, then its event is left alone', async (t) => {
  const young = order('PROCESSED', { updatedAt: new Date(NOW.getTime() - GRACE_MS / 2) });
  const old = order('REJECTED', { updatedAt: new Date(NOW.getTime() - GRACE_MS - LOOK_BACK_MS - 1) });
  const { reconciler, events } = buildWithEvents([young, old]);

  const report = await reconciler.tick();

  t.is(report.eventReadded, 0);
  t.deepEqual(events.added, []);
});

test('when webhooks are off, then ended orders are not looked at for events', async (t) => {
  const o = order('PROCESSED', { updatedAt: RECENT });
  const { reconciler } = build([o], {}, { eventLookBackMs: LOOK_BACK_MS });

  const report = await reconciler.tick();

  t.is(report.eventReadded, 0);
});

test('when more ended orders lack their event than the pages allow, then the tick adds that many, says so, and the next goes on', async (t) => {
  const orders = Array.from({ length: 7 }, (_, i) => order('FAILED', { updatedAt: new Date(RECENT.getTime() + i) }));
  const { reconciler, events } = buildWithEvents(orders, [], { batchSize: 2, maxPages: 2 });

  const first = await reconciler.tick();
  const second = await reconciler.tick();

  t.like(first, { eventReadded: 4, truncated: true });
  t.like(second, { eventReadded: 3, truncated: false });
  t.deepEqual(
    events.added,
    orders.map((o) => `${o.id}-failed`),
  );
});

test('when only some ended orders of a page lack their event, then only those are added and counted', async (t) => {
  const orders = Array.from({ length: 4 }, (_, i) => order('CANCELLED', { updatedAt: new Date(RECENT.getTime() + i) }));
  const { reconciler, events } = buildWithEvents(orders, [`${orders[0].id}-cancelled`, `${orders[2].id}-cancelled`]);

  const report = await reconciler.tick();

  t.is(report.eventReadded, 2);
  t.deepEqual(events.added, [`${orders[1].id}-cancelled`, `${orders[3].id}-cancelled`]);
});
