import test from 'ava';
import {
  DEAD_JOB_RETRIED_REASON,
  REASON_LIMIT,
  createLogger,
  toOrder,
  type Order,
  type OrderStatus,
  type StepCheckpoints,
} from '#common';
import { createFakeWorkerOrderRepository } from '../../worker/repositories/fake-order-repository.js';
import { createFakeOrderStepsRepository } from '../../worker/repositories/fake-order-steps-repository.js';
import { createOrderSaga } from '../../worker/saga/order-saga.js';
import { CircuitOpenError, type Charge, type ChargeRequest, type PaymentPort } from '../../worker/saga/ports.js';
import {
  AttemptAbandonedError,
  OrderNotFoundError,
  WaitForProviderError,
  createOrderProcessingService,
} from '../../worker/services/order-processing-service.js';
import { createFaults, createFakeInventory } from '../helpers/saga-fakes.js';
import { storedOrder } from '../helpers/orders.js';

const logger = createLogger({ service: 'test', level: 'silent' });

/** How the fake provider answers a charge. */
type ChargeBehaviour = (request: ChargeRequest) => Promise<'succeeded' | 'declined'>;
const ok: ChargeBehaviour = () => Promise.resolve('succeeded');
const failing: ChargeBehaviour = (r) => Promise.reject(new Error(`failed ${r.orderId} on claim ${r.claims}`));

/** A payment provider that keeps its charges by key and refunds, answering charges as `behaviour` says. */
function fakePayments(behaviour: ChargeBehaviour) {
  const charges = new Map<string, Charge>();
  const refunds: string[] = [];
  const seen: ChargeRequest[] = [];
  const port: PaymentPort = {
    async charge(request) {
      seen.push(request);
      const key = request.idempotencyKey ?? `${request.orderId}:charge`;
      const existing = charges.get(key);
      if (existing) return existing;
      const status = await behaviour(request);
      const charge: Charge = {
        id: `ch_${charges.size + 1}`,
        orderId: request.orderId,
        status,
        amountCents: request.amountCents,
      };
      charges.set(key, charge);
      return charge;
    },
    findCharge: (orderId, key) => Promise.resolve(charges.get(key ?? `${orderId}:charge`) ?? null),
    refund(request) {
      refunds.push(request.chargeId);
      return Promise.resolve({ id: `re_${refunds.length}` });
    },
  };
  return { port, charges, refunds, seen };
}

function build(
  seed: Order[],
  behaviour: ChargeBehaviour = ok,
  stock: Record<string, number> = {},
  inventory = createFakeInventory({ faults: createFaults(), stock }),
) {
  const repository = createFakeWorkerOrderRepository(seed);
  const payments = fakePayments(behaviour);
  const saga = createOrderSaga({
    inventory: inventory.port,
    payments: payments.port,
    orders: createFakeOrderStepsRepository(repository.orders),
    logger,
  });
  const processed: Order[] = [];
  const rejected: string[] = [];
  const service = createOrderProcessingService({
    repository,
    saga,
    logger,
    observer: { processed: (o) => processed.push(o), rejected: (_o, reason) => rejected.push(reason) },
  });
  return { service, repository, processed, rejected, inventory, payments };
}

const order = (status: OrderStatus, attempts = 0, steps?: StepCheckpoints) =>
  toOrder(storedOrder(status, { attempts, ...(steps ? { steps } : {}) }));
const input = (o: Order, jobAttempt = 1, isLastAttempt = false) => ({
  orderId: o.id,
  jobId: o.id,
  jobAttempt,
  isLastAttempt,
});

test('when a PENDING order is attempted and every step works, then it is PROCESSED with one effect, one charge and one sale', async (t) => {
  const o = order('PENDING');
  const { service, repository, processed, payments, inventory } = build([o], ok, { 'SKU-1': 5 });

  t.is(await service.attempt(input(o)), 'completed');

  const after = repository.orders.get(o.id);
  t.is(after?.status, 'PROCESSED');
  t.is(after?.attempts, 1);
  t.deepEqual(
    after?.history.slice(1).map((h) => [h.status, h.attempt ?? null, h.step ?? null]),
    [
      ['PROCESSING', 1, null],
      ['PROCESSING', null, 'reserve'],
      ['PROCESSING', null, 'charge'],
      ['PROCESSED', null, null],
    ],
  );
  t.deepEqual(Object.fromEntries(Object.entries(after?.steps ?? {}).map(([k, v]) => [k, v?.status])), {
    reserve: 'done',
    charge: 'done',
    confirm: 'done',
  });
  t.is(after?.steps?.charge?.ref, 'ch_1');
  t.is(payments.charges.size, 1);
  t.deepEqual(inventory.levels('SKU-1'), { available: 3, reserved: 0, sold: 2 });
  t.like(repository.effects.get(o.id), { jobAttempt: 1, jobId: o.id, totalCents: 2500 });
  t.is(processed.length, 1);
});

test('when the provider is told the claim, then it gets the order’s claims, not the job’s attempt', async (t) => {
  const o = order('PENDING', 4);
  const { service, payments } = build([o]);
  await service.attempt(input(o, 1));
  t.deepEqual(
    payments.seen.map((r) => r.claims),
    [5],
  );
});

test('when stock is short, then the order is REJECTED OUT_OF_STOCK, nothing is charged and nothing held', async (t) => {
  const o = order('PENDING');
  const { service, repository, rejected, payments, inventory } = build([o], ok, { 'SKU-1': 1 });

  t.is(await service.attempt(input(o)), 'rejected');

  const after = repository.orders.get(o.id);
  t.is(after?.status, 'REJECTED');
  t.is(after?.rejectionReason, 'OUT_OF_STOCK');
  t.deepEqual(rejected, ['OUT_OF_STOCK']);
  t.is(payments.seen.length, 0);
  t.deepEqual(inventory.levels('SKU-1'), { available: 1, reserved: 0, sold: 0 });
  t.is(repository.effects.size, 0);
});

test('when the card is declined, then the order is REJECTED PAYMENT_DECLINED with its reservation released', async (t) => {
  const o = order('PENDING');
  const { service, repository, inventory } = build([o], () => Promise.resolve('declined'), { 'SKU-1': 5 });

  t.is(await service.attempt(input(o)), 'rejected');

  const after = repository.orders.get(o.id);
  t.is(after?.status, 'REJECTED');
  t.is(after?.rejectionReason, 'PAYMENT_DECLINED');
  t.is(after?.steps?.reserve?.status, 'compensated');
  t.deepEqual(inventory.levels('SKU-1'), { available: 5, reserved: 0, sold: 0 });
});

test('when the payment breaker is open, then the order goes back to PENDING and the job is told to wait, not to spend an attempt', async (t) => {
  const o = order('PENDING');
  const { service, repository, inventory } = build([o], () => Promise.reject(new CircuitOpenError(750)), {
    'SKU-1': 5,
  });

  const err = await t.throwsAsync(service.attempt(input(o, 1, true)), { instanceOf: WaitForProviderError });
  t.is(err?.delayMs, 750);

  const after = repository.orders.get(o.id);
  t.is(after?.status, 'PENDING', 'not FAILED, even on the last attempt');
  t.is(after?.steps?.reserve?.status, 'done', 'the reservation is kept while the order waits');
  t.deepEqual(inventory.levels('SKU-1'), { available: 3, reserved: 2, sold: 0 });
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

test('when the last attempt fails, then the order is FAILED (the dead letter) with its reservation released', async (t) => {
  const o = order('PENDING', 2);
  const { service, repository, inventory } = build([o], failing, { 'SKU-1': 5 });

  await t.throwsAsync(service.attempt(input(o, 3, true)));

  const after = repository.orders.get(o.id);
  t.is(after?.status, 'FAILED');
  t.is(after?.lastError, `failed ${o.id} on claim 3`);
  t.truthy(after?.failedAt);
  t.is(after?.steps?.reserve?.status, 'compensated');
  t.true(after?.history.some((h) => h.step === 'reserve' && h.action === 'compensated'));
  t.deepEqual(inventory.levels('SKU-1'), { available: 5, reserved: 0, sold: 0 });
});

test('when a dead order that was charged is reprocessed, then its charge was refunded and the new run charges under a new key', async (t) => {
  // Charged, then its confirm kept failing: onJobDead refunds it; a reprocess starts again from reserve.
  const o = order('PROCESSING', 3);
  const { service, repository, payments, inventory } = build([o], ok, { 'SKU-1': 5 });
  await inventory.port.reserve(o.id, o.items);
  const charged = await payments.port.charge({ orderId: o.id, amountCents: 2500, currency: 'EUR', claims: 3 });
  repository.orders.set(o.id, {
    ...o,
    steps: { reserve: { status: 'done', at: new Date() }, charge: { status: 'done', at: new Date(), ref: charged.id } },
  });

  t.true(await service.onJobDead(o.id, 'confirm kept failing'));
  t.deepEqual(payments.refunds, [charged.id]);
  const dead = repository.orders.get(o.id);
  t.is(dead?.steps?.charge?.status, 'compensated');

  repository.orders.set(o.id, { ...dead!, status: 'PENDING' });
  t.is(await service.attempt(input(o, 1)), 'completed');
  const done = repository.orders.get(o.id);
  t.is(done?.status, 'PROCESSED');
  t.not(done?.steps?.charge?.ref, charged.id, 'a new charge, not the refunded one');
  t.is(payments.seen.at(-1)?.idempotencyKey, `${o.id}:charge:${charged.id}`);
});

/** A PROCESSING order reserved and charged whose sale was made, as a job that stalled out after the sale leaves it. */
async function soldButNotProcessed(stock: Record<string, number> = { 'SKU-1': 5 }) {
  const o = order('PROCESSING', 3);
  const world = build([o], ok, stock);
  await world.inventory.port.reserve(o.id, o.items);
  const charged = await world.payments.port.charge({ orderId: o.id, amountCents: 2500, currency: 'EUR', claims: 3 });
  await world.inventory.port.commit(o.id, o.items);
  world.repository.orders.set(o.id, {
    ...o,
    steps: { reserve: { status: 'done', at: new Date() }, charge: { status: 'done', at: new Date(), ref: charged.id } },
  });
  return { o, charged, ...world };
}

test('when a job dies after its order was sold but before PROCESSED, then nothing is undone and a reprocess completes it without a second charge or sale', async (t) => {
  const { o, charged, service, repository, payments, inventory } = await soldButNotProcessed();

  t.true(await service.onJobDead(o.id, 'job stalled more than allowable limit'));
  const dead = repository.orders.get(o.id);
  t.is(dead?.status, 'FAILED');
  t.deepEqual(payments.refunds, [], 'the charge stands: the sale was made');
  t.is(dead?.steps?.charge?.status, 'done');
  t.deepEqual(inventory.levels('SKU-1'), { available: 3, reserved: 0, sold: 2 });

  repository.orders.set(o.id, { ...dead!, status: 'PENDING' });
  t.is(await service.attempt(input(o, 1)), 'completed');
  const done = repository.orders.get(o.id);
  t.is(done?.status, 'PROCESSED');
  t.is(done?.steps?.charge?.ref, charged.id, 'the charge made before the stall');
  t.is(payments.seen.length, 1, 'no second charge request');
  t.deepEqual(payments.refunds, []);
  t.is(inventory.sales(o.id), 1);
  t.deepEqual(inventory.levels('SKU-1'), { available: 3, reserved: 0, sold: 2 });
});

test("when a dead order's stock cannot be read, then nothing is undone now and the order is FAILED with its effects recorded", async (t) => {
  const o = order('PROCESSING', 3);
  const faults = createFaults();
  const inventory = createFakeInventory({ faults, stock: { 'SKU-1': 5 } });
  await inventory.port.reserve(o.id, o.items);
  const world = build([o], ok, {}, inventory);
  const charged = await world.payments.port.charge({ orderId: o.id, amountCents: 2500, currency: 'EUR', claims: 3 });
  world.repository.orders.set(o.id, {
    ...o,
    steps: { reserve: { status: 'done', at: new Date() }, charge: { status: 'done', at: new Date(), ref: charged.id } },
  });
  faults.failNext('inventory.holds');

  t.true(await world.service.onJobDead(o.id, 'job stalled more than allowable limit'));
  const dead = world.repository.orders.get(o.id);
  t.is(dead?.status, 'FAILED');
  t.deepEqual(world.payments.refunds, []);
  t.is(dead?.steps?.reserve?.status, 'done');
  t.is(dead?.steps?.charge?.status, 'done');
});

test('when an order that died mid-sale is cancelled, then its charge is refunded and its sold stock stays sold', async (t) => {
  const { o, charged, service, repository, payments, inventory } = await soldButNotProcessed();
  t.true(await service.onJobDead(o.id, 'job stalled more than allowable limit'));
  repository.orders.set(o.id, { ...repository.orders.get(o.id)!, status: 'CANCELLED' });

  t.is(await service.attempt(input(o)), 'compensated');
  const cancelled = repository.orders.get(o.id);
  t.deepEqual(payments.refunds, [charged.id]);
  t.like(cancelled?.steps?.reserve, { status: 'compensated', ref: 'sold' });
  t.deepEqual(inventory.levels('SKU-1'), { available: 3, reserved: 0, sold: 2 });
  // Its job run again finds nothing left to undo.
  t.is(await service.attempt(input(o)), 'noop_terminal');
  t.deepEqual(payments.refunds, [charged.id]);
});

test('when a cancelled order still holds a reservation, then its job undoes it', async (t) => {
  const o = order('CANCELLED', 1, { reserve: { status: 'done', at: new Date() } });
  const { service, repository } = build([o]);

  t.is(await service.attempt(input(o)), 'compensated');
  t.is(repository.orders.get(o.id)?.steps?.reserve?.status, 'compensated');
  t.deepEqual(repository.settled, [o.id], 'its compensationDue mark is cleared');
});

test('when the attempt is aborted at shutdown, then AttemptAbandonedError is thrown and the order stays PROCESSING', async (t) => {
  const o = order('PENDING');
  const controller = new AbortController();
  const { service, repository } = build([o], (request) => {
    controller.abort();
    request.signal?.throwIfAborted();
    return Promise.resolve('succeeded');
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
  t.like(
    after?.history.find((h) => h.reason === DEAD_JOB_RETRIED_REASON),
    { status: 'PROCESSING', attempt: 1 },
  );
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
