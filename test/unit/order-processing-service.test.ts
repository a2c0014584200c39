import test from 'ava';
import { DEAD_JOB_RETRIED_REASON, REASON_LIMIT, createLogger, toOrder, type Order, type OrderStatus } from '#common';
import { createFakeWorkerOrderRepository } from '../../worker/repositories/fake-order-repository.js';
import type { BusinessStep } from '../../worker/services/business-step.js';
import {
  AttemptAbandonedError,
  OrderNotFoundError,
  createOrderProcessingService,
} from '../../worker/services/order-processing-service.js';
import { storedOrder } from '../helpers/orders.js';

const logger = createLogger({ service: 'test', level: 'silent' });
const ok: BusinessStep = () => Promise.resolve();
const failing: BusinessStep = (order, claims) => Promise.reject(new Error(`failed ${order.id} on claim ${claims}`));

function build(seed: Order[], step: BusinessStep = ok) {
  const repository = createFakeWorkerOrderRepository(seed);
  const processed: Order[] = [];
  const service = createOrderProcessingService({ repository, step, logger, onProcessed: (o) => processed.push(o) });
  return { service, repository, processed };
}

const order = (status: OrderStatus, attempts = 0) => toOrder(storedOrder(status, { attempts }));
const input = (o: Order, jobAttempt = 1, isLastAttempt = false) => ({
  orderId: o.id,
  jobId: o.id,
  jobAttempt,
  isLastAttempt,
});

test('when a PENDING order is attempted and the step works, then it is PROCESSED with one effect', async (t) => {
  const o = order('PENDING');
  const { service, repository, processed } = build([o]);

  t.is(await service.attempt(input(o)), 'completed');

  const after = repository.orders.get(o.id);
  t.is(after?.status, 'PROCESSED');
  t.is(after?.attempts, 1);
  t.deepEqual(
    after?.history.slice(1).map((h) => [h.status, h.attempt ?? null]),
    [
      ['PROCESSING', 1],
      ['PROCESSED', null],
    ],
  );
  t.like(repository.effects.get(o.id), { jobAttempt: 1, jobId: o.id, totalCents: 2500 });
  t.is(processed.length, 1);
});

test('when the step is told its attempt, then it gets the order’s claims, not the job’s attempt', async (t) => {
  const o = order('PENDING', 4);
  const seen: number[] = [];
  const { service } = build([o], (_order, claims) => {
    seen.push(claims);
    return Promise.resolve();
  });
  await service.attempt(input(o, 1));
  t.deepEqual(seen, [5]);
});

test('when a PROCESSING order left by a crash is attempted, then it is reclaimed and completed', async (t) => {
  const o = order('PROCESSING', 1);
  const { service, repository } = build([o]);
  t.is(await service.attempt(input(o, 2)), 'completed');
  t.is(repository.orders.get(o.id)?.attempts, 2);
});

for (const status of ['PROCESSED', 'CANCELLED', 'REJECTED'] as const) {
  test(`when a ${status} order is attempted, then it is a no-op and nothing changes`, async (t) => {
    const o = order(status, 1);
    const { service, repository } = build([o]);
    t.is(await service.attempt(input(o)), 'noop_terminal');
    t.is(repository.orders.get(o.id), o);
    t.is(repository.effects.size, 0);
  });
}

test('when a missing order is attempted, then OrderNotFoundError is thrown', async (t) => {
  const { service } = build([]);
  await t.throwsAsync(service.attempt(input(order('PENDING'))), { instanceOf: OrderNotFoundError });
});

test('when an attempt fails and a retry follows, then the order is PENDING with the error', async (t) => {
  const o = order('PENDING');
  const { service, repository } = build([o], failing);

  await t.throwsAsync(service.attempt(input(o, 1, false)), { message: `failed ${o.id} on claim 1` });

  const after = repository.orders.get(o.id);
  t.is(after?.status, 'PENDING');
  t.is(after?.lastError, `failed ${o.id} on claim 1`);
  t.is(repository.effects.size, 0);
});

test('when the last attempt fails, then the order is FAILED (the dead letter)', async (t) => {
  const o = order('PENDING', 2);
  const { service, repository } = build([o], failing);

  await t.throwsAsync(service.attempt(input(o, 3, true)));

  const after = repository.orders.get(o.id);
  t.is(after?.status, 'FAILED');
  t.is(after?.lastError, `failed ${o.id} on claim 3`);
  t.truthy(after?.failedAt);
});

test('when the attempt is aborted at shutdown, then AttemptAbandonedError is thrown and the order stays PROCESSING', async (t) => {
  const o = order('PENDING');
  const controller = new AbortController();
  const { service, repository } = build([o], (_order, _claims, signal) => {
    controller.abort();
    signal?.throwIfAborted();
    return Promise.resolve();
  });

  await t.throwsAsync(service.attempt({ ...input(o, 1, true), signal: controller.signal }), {
    instanceOf: AttemptAbandonedError,
  });

  t.is(repository.orders.get(o.id)?.status, 'PROCESSING');
});

test('when a dead order is taken by the first attempt of a fresh series, then its claim says why', async (t) => {
  const o = order('FAILED', 3);
  const { service, repository } = build([o]);

  t.is(await service.attempt(input(o, 1)), 'completed');

  const after = repository.orders.get(o.id);
  t.is(after?.status, 'PROCESSED');
  t.is(after?.attempts, 4);
  t.like(after?.history.at(-2), { status: 'PROCESSING', attempt: 1, reason: DEAD_JOB_RETRIED_REASON });
});

test('when a dead order is taken in the middle of a series, then the series must restart and nothing changes', async (t) => {
  const o = order('FAILED', 3);
  const { service, repository } = build([o]);

  t.is(await service.attempt(input(o, 2)), 'restart_series');

  t.is(repository.orders.get(o.id), o);
});

test('when onJobDead is told of a PROCESSING order, then it is FAILED with the reason cut to the limit', async (t) => {
  const o = order('PROCESSING', 1);
  const { service, repository } = build([o]);

  t.true(await service.onJobDead(o.id, 'x'.repeat(REASON_LIMIT + 50)));

  const after = repository.orders.get(o.id);
  t.is(after?.status, 'FAILED');
  t.is(after?.lastError?.length, REASON_LIMIT);
});

for (const status of ['PENDING', 'FAILED', 'PROCESSED'] as const) {
  test(`when onJobDead is told of a ${status} order, then nothing changes`, async (t) => {
    const o = order(status, 1);
    const { service, repository } = build([o]);
    t.false(await service.onJobDead(o.id, 'job stalled more than allowable limit'));
    t.is(repository.orders.get(o.id), o);
  });
}
