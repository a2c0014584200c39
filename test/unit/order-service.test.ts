import test from 'ava';
import { AppError, createLogger, toOrder, type Order, type OrderStatus } from '#common';
import { createEnqueueMarks } from '../../api/repositories/enqueue-marks.js';
import { createFakeOrderJobs } from '../../api/repositories/fake-order-jobs.js';
import { createFakeOrderRepository } from '../../api/repositories/fake-order-repository.js';
import { createOrderService } from '../../api/services/order-service.js';
import { storedOrder } from '../helpers/orders.js';

const logger = createLogger({ service: 'test', level: 'silent' });
const INPUT = { customerId: 'c-1', items: [{ sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 }], currency: 'EUR' };
const AT = new Date('2026-01-01T00:00:00Z');

function build(seed: Order[] = []) {
  const repository = createFakeOrderRepository(seed);
  const jobs = createFakeOrderJobs();
  const marked: string[] = [];
  const marks = createEnqueueMarks({
    write: async (ids, at) => {
      marked.push(...ids);
      await repository.markEnqueued(ids, at);
    },
    logger,
    windowMs: 0,
    now: () => AT,
  });
  const service = createOrderService({ repository, jobs, marks, logger, now: () => AT });
  return { service, repository, jobs, marks, marked };
}

const create = (service: ReturnType<typeof build>['service'], key?: string, input = INPUT) =>
  service.create({ input, idempotencyKey: key, scope: 'shop', correlationId: 'corr-1' });

test('when an order is created, then it is stored PENDING, its job added and enqueuedAt recorded', async (t) => {
  const { service, repository, jobs, marks, marked } = build();

  const { order, outcome } = await create(service);
  await marks.drain();

  t.is(outcome, 'created');
  t.like(order, { status: 'PENDING', clientId: 'shop', totalCents: 2500, attempts: 0, fingerprint: null });
  t.deepEqual(order.history, [{ status: 'PENDING', at: AT }]);
  t.is(jobs.jobs.get(order.id), 'waiting');
  t.deepEqual(marked, [order.id]);
  t.deepEqual(repository.orders.get(order.id)?.enqueuedAt, AT);
});

test('when the same key comes again with the same body, then the first order is replayed, not stored twice', async (t) => {
  const { service, repository } = build();
  const first = await create(service, 'key-1');

  const again = await create(service, 'key-1', { ...INPUT, items: [...INPUT.items] });

  t.is(again.outcome, 'replayed');
  t.is(again.order.id, first.order.id);
  t.is(repository.orders.size, 1);
});

test('when the same key comes again with another body, then IDEMPOTENCY_KEY_REUSED is thrown', async (t) => {
  const { service, repository } = build();
  await create(service, 'key-1');

  const err = await t.throwsAsync(create(service, 'key-1', { ...INPUT, currency: 'USD' }), { instanceOf: AppError });

  t.is(err?.code, 'IDEMPOTENCY_KEY_REUSED');
  t.is(repository.orders.size, 1);
});

test('when two keys are used, then two orders exist', async (t) => {
  const { service, repository } = build();
  const a = await create(service, 'key-a');
  const b = await create(service, 'key-b');
  t.not(a.order.id, b.order.id);
  t.is(repository.orders.size, 2);
});

test('when Redis does not take the job, then the order is accepted unqueued and no mark is recorded', async (t) => {
  const { service, repository, jobs, marks, marked } = build();
  jobs.setDown(true);

  const { order, outcome } = await create(service, 'key-1');
  await marks.drain();

  t.is(outcome, 'accepted_unqueued');
  t.is(repository.orders.get(order.id)?.enqueuedAt, null);
  t.deepEqual(marked, []);
});

test('when an unqueued order is replayed with Redis back, then its job is added and marked', async (t) => {
  const { service, repository, jobs, marks } = build();
  jobs.setDown(true);
  const first = await create(service, 'key-1');
  jobs.setDown(false);

  const again = await create(service, 'key-1');
  await marks.drain();

  t.is(again.outcome, 'replayed');
  t.is(jobs.jobs.get(first.order.id), 'waiting');
  t.deepEqual(repository.orders.get(first.order.id)?.enqueuedAt, AT);
});

test('when a replayed order was already queued, then no job is added again', async (t) => {
  const { service, jobs, marks } = build();
  await create(service, 'key-1');
  await marks.drain();
  const before = jobs.calls.length;

  await create(service, 'key-1');

  t.is(jobs.calls.length, before);
});

const seeded = (status: OrderStatus, clientId = 'shop') => toOrder(storedOrder(status, { clientId }));

for (const status of ['PENDING', 'FAILED'] as const) {
  test(`when a ${status} order is cancelled, then it is CANCELLED with the reason in its history`, async (t) => {
    const order = seeded(status);
    const { service } = build([order]);

    const cancelled = await service.cancel(order.id, 'shop');

    t.is(cancelled.status, 'CANCELLED');
    t.like(cancelled.history.at(-1), { status: 'CANCELLED', reason: 'cancelled through the API' });
  });
}

test('when a FAILED order that still holds a charge is cancelled, then its job runs again so the worker refunds it', async (t) => {
  const held = toOrder(
    storedOrder('FAILED', {
      clientId: 'shop',
      steps: { reserve: { status: 'done', at: AT }, charge: { status: 'done', at: AT, ref: 'ch_1' } },
    }),
  );
  const { service, jobs } = build([held]);
  jobs.jobs.set(held.id, 'failed');

  t.is((await service.cancel(held.id, 'shop')).status, 'CANCELLED');

  t.deepEqual(jobs.calls, [`revive ${held.id}`]);
  t.is(jobs.jobs.get(held.id), 'waiting');
});

test('when an order that holds nothing is cancelled, then no job is touched', async (t) => {
  const order = seeded('FAILED');
  const { service, jobs } = build([order]);
  await service.cancel(order.id, 'shop');
  t.deepEqual(jobs.calls, []);
});

test('when Redis is away as a holding order is cancelled, then the cancel still stands and the failure to queue is only logged', async (t) => {
  const held = toOrder(storedOrder('PENDING', { clientId: 'shop', steps: { reserve: { status: 'done', at: AT } } }));
  const { service, jobs } = build([held]);
  jobs.setDown(true);
  t.is((await service.cancel(held.id, 'shop')).status, 'CANCELLED');
});

for (const status of ['PROCESSING', 'PROCESSED', 'CANCELLED', 'REJECTED'] as const) {
  test(`when a ${status} order is cancelled, then INVALID_STATE is thrown and it is unchanged`, async (t) => {
    const order = seeded(status);
    const { service, repository } = build([order]);

    const err = await t.throwsAsync(service.cancel(order.id, 'shop'), { instanceOf: AppError });

    t.is(err?.code, 'INVALID_STATE');
    t.regex(err?.message ?? '', new RegExp(`is ${status}`));
    t.is(repository.orders.get(order.id), order);
  });
}

test("when another client's order is read or cancelled, then NOT_FOUND is thrown and it is unchanged", async (t) => {
  const order = seeded('PENDING', 'other');
  const { service, repository } = build([order]);

  t.is((await t.throwsAsync(service.get(order.id, 'shop'), { instanceOf: AppError }))?.code, 'NOT_FOUND');
  t.is((await t.throwsAsync(service.cancel(order.id, 'shop'), { instanceOf: AppError }))?.code, 'NOT_FOUND');
  t.is(repository.orders.get(order.id)?.status, 'PENDING');
});
