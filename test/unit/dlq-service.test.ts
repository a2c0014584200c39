import test from 'ava';
import { AppError, createLogger, toOrder, type Order, type OrderStatus } from '#common';
import { createFakeOrderJobs } from '../../api/repositories/fake-order-jobs.js';
import { createFakeOrderRepository } from '../../api/repositories/fake-order-repository.js';
import { REPROCESS_BATCH, createDlqService } from '../../api/services/dlq-service.js';
import { storedOrder } from '../helpers/orders.js';

const logger = createLogger({ service: 'test', level: 'silent' });
const AT = new Date('2026-01-01T00:00:00Z');

function build(seed: Order[] = []) {
  const repository = createFakeOrderRepository(seed);
  const jobs = createFakeOrderJobs();
  for (const o of seed) if (o.status === 'FAILED') jobs.jobs.set(o.id, 'failed');
  const service = createDlqService({ repository, jobs, logger, now: () => AT });
  return { service, repository, jobs };
}

const dead = (failedAt = new Date(Date.now() - 1000)) =>
  toOrder(
    storedOrder('FAILED', {
      failedAt,
      history: [
        { status: 'PENDING', at: failedAt },
        { status: 'FAILED', at: failedAt, reason: 'boom' },
      ],
    }),
  );

test('when a FAILED order is reprocessed, then it is PENDING, its job retried and enqueuedAt recorded', async (t) => {
  // Never marked enqueued before (its first mark was lost), so the reprocess's mark shows.
  const order = { ...dead(), enqueuedAt: null };
  const { service, repository, jobs } = build([order]);

  const result = await service.reprocess(order.id, { actor: 'ops', reason: 'fixed' });

  t.true(result.changed);
  t.is(result.order.status, 'PENDING');
  t.is(result.order.history.at(-1)?.reason, 'reprocess requested by ops: fixed');
  t.is(jobs.jobs.get(order.id), 'waiting');
  t.true(jobs.calls.includes(`revive ${order.id}`));
  t.deepEqual(repository.orders.get(order.id)?.enqueuedAt, AT);
});

test('when a reprocess is repeated, then it answers as the first did and changes nothing', async (t) => {
  const order = dead();
  const { service } = build([order]);
  await service.reprocess(order.id, { actor: 'ops' });

  const again = await service.reprocess(order.id, { actor: 'ops' });

  t.false(again.changed);
  t.is(again.order.status, 'PENDING');
  t.is(again.order.history.filter((h) => h.reason?.startsWith('reprocess requested')).length, 1);
});

test('when a reprocessed order is already running and the call is repeated, then its job is not touched', async (t) => {
  const order = dead();
  const { service, repository, jobs } = build([order]);
  await service.reprocess(order.id, { actor: 'ops' });
  const pending = repository.orders.get(order.id) as Order;
  repository.orders.set(order.id, { ...pending, status: 'PROCESSING' });
  const before = jobs.calls.length;

  const again = await service.reprocess(order.id, { actor: 'ops' });

  t.false(again.changed);
  t.is(again.order.status, 'PROCESSING');
  t.is(jobs.calls.length, before);
});

for (const status of ['PENDING', 'PROCESSING', 'PROCESSED', 'CANCELLED', 'REJECTED'] as const satisfies OrderStatus[]) {
  test(`when a ${status} order that was never reprocessed is reprocessed, then INVALID_STATE is thrown`, async (t) => {
    const order = toOrder(storedOrder(status));
    const { service, repository } = build([order]);

    const err = await t.throwsAsync(service.reprocess(order.id, { actor: 'ops' }), { instanceOf: AppError });

    t.is(err?.code, 'INVALID_STATE');
    t.is(repository.orders.get(order.id), order);
  });
}

test('when a missing order is reprocessed, then NOT_FOUND is thrown', async (t) => {
  const { service } = build();
  const err = await t.throwsAsync(service.reprocess(`ord_${'0'.repeat(32)}`, { actor: 'ops' }), {
    instanceOf: AppError,
  });
  t.is(err?.code, 'NOT_FOUND');
});

test('when Redis is away, then the reprocess is accepted (PENDING) and enqueuedAt is left for the reconciler', async (t) => {
  const order = dead();
  const { service, repository, jobs } = build([order]);
  jobs.setDown(true);

  const result = await service.reprocess(order.id, { actor: 'ops' });

  t.true(result.changed);
  t.is(repository.orders.get(order.id)?.status, 'PENDING');
  t.deepEqual(repository.orders.get(order.id)?.enqueuedAt, order.enqueuedAt);
});

test('when the dead letters are listed with Redis away, then SERVICE_UNAVAILABLE is thrown', async (t) => {
  const { service, jobs } = build([dead()]);
  jobs.setDown(true);
  const err = await t.throwsAsync(service.list({ limit: 10 }), { instanceOf: AppError });
  t.is(err?.code, 'SERVICE_UNAVAILABLE');
});

test('when the dead letters are listed, then each comes with its job, newest failure first', async (t) => {
  const older = dead(new Date(Date.now() - 5000));
  const newer = dead(new Date(Date.now() - 1000));
  const { service } = build([older, newer]);

  const page = await service.list({ limit: 1 });

  t.true(page.hasMore);
  t.is(page.items[0].order.id, newer.id);
  t.is(page.items[0].job?.state, 'failed');
});

test('when every dead order is reprocessed, then all of them are walked in batches', async (t) => {
  const orders = Array.from({ length: REPROCESS_BATCH + 7 }, (_, i) => dead(new Date(Date.now() - 1000 - i)));
  const { service, repository } = build(orders);

  const result = await service.reprocessMany({ actor: 'ops' });

  t.deepEqual(result, { reprocessed: REPROCESS_BATCH + 7, skipped: 0, notFound: 0 });
  t.true([...repository.orders.values()].every((o) => o.status === 'PENDING'));
});

test('when listed orders are reprocessed, then missing and not-FAILED ones are counted apart', async (t) => {
  const failed = dead();
  const processed = toOrder(storedOrder('PROCESSED'));
  const { service } = build([failed, processed]);

  const result = await service.reprocessMany({
    orderIds: [failed.id, processed.id, `ord_${'0'.repeat(32)}`],
    actor: 'ops',
  });

  t.deepEqual(result, { reprocessed: 1, skipped: 1, notFound: 1 });
});
