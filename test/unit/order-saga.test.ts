import test from 'ava';
import fc from 'fast-check';
import { CircuitOpenError, PaymentUnavailableError, chargeKey } from '../../worker/saga/ports.js';
import type { SagaStepEvent } from '../../worker/saga/order-saga.js';
import { createSagaWorld, type FaultPhase, type SagaWorld } from '../helpers/saga-fakes.js';

/** The order's checkpoints as `step:status[:ref]`, in step order. */
function checkpoints(world: SagaWorld, id: string): string[] {
  const steps = world.orders.get(id).steps ?? {};
  return (['reserve', 'charge', 'confirm', 'notify'] as const)
    .filter((step) => steps[step])
    .map((step) => [step, steps[step]?.status, steps[step]?.ref].filter(Boolean).join(':'));
}

/** Drives an order to FAILED: its sale fails on every attempt until the last. */
async function dieAfterCharge(world: SagaWorld, id: string) {
  world.faults.failNext('inventory.commit');
  const error = await world.attempt(id, { last: true });
  if (!(error instanceof Error)) throw new Error(`expected the attempt to fail, got ${error}`);
}

/** Compensates until it succeeds (the caller retries a failing compensation); returns the failures. */
async function compensateFully(world: SagaWorld, id: string): Promise<unknown[]> {
  const failures: unknown[] = [];
  for (let i = 0; i < 50; i += 1) {
    try {
      await world.compensate(id);
      return failures;
    } catch (err) {
      failures.push(err);
    }
  }
  throw new Error(`compensation of ${id} never succeeded: ${String(failures.at(-1))}`);
}

// --- the happy path -------------------------------------------------------------------------------

test('when an order runs once without trouble, then it is reserved, charged once, sold once and checkpointed', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place();

  const outcome = await world.attempt(order.id);

  t.is(outcome, 'processed');
  t.is(world.orders.status(order.id), 'PROCESSED');
  const [charge] = world.payments.standing(order.id);
  t.deepEqual(world.payments.charges(order.id), [
    {
      id: charge.id,
      orderId: order.id,
      status: 'succeeded',
      amountCents: 2500,
      key: `${order.id}:charge`,
      refundId: undefined,
    },
  ]);
  t.is(world.inventory.reservations(order.id), 1);
  t.is(world.inventory.sales(order.id), 1);
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 8, reserved: 0, sold: 2 });
  t.deepEqual(checkpoints(world, order.id), ['reserve:done', `charge:done:${charge.id}`, 'confirm:done']);
  t.deepEqual(world.orders.events(order.id), ['reserve done', `charge done ${charge.id}`]);
  // A first claim cannot have charged before: no look-up, one request with the order's own data.
  t.is(world.faults.count('payments.findCharge'), 0);
  t.like(world.payments.chargeRequests(order.id), [
    { orderId: order.id, amountCents: 2500, currency: 'EUR', claims: 1, idempotencyKey: `${order.id}:charge` },
  ]);
});

test('when an order names a SKU with no stock set, then it is processed and nothing is counted', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 0 } });
  const order = world.place({ items: [{ sku: 'UNTRACKED', quantity: 5, unitPriceCents: 100 }] });

  t.is(await world.attempt(order.id), 'processed');
  t.is(world.inventory.levels('UNTRACKED'), undefined);
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 0, reserved: 0, sold: 0 });
  t.is(world.payments.standing(order.id).length, 1);
});

test('when the order carries a test card, then the charge request carries it', async (t) => {
  const world = createSagaWorld();
  const order = world.place({ metadata: { testCard: '4242' } });

  await world.attempt(order.id);

  t.is(world.payments.chargeRequests(order.id)[0].testCard, '4242');
});

// --- a failure at every call, then a new attempt ------------------------------------------------

const interruptions: [string, FaultPhase, string][] = [
  ['inventory.reserve', 'before', 'stock unreachable'],
  ['inventory.reserve', 'after', 'reserved, answer lost'],
  ['orders.checkpoint:reserve', 'before', 'crash after the reservation, before its checkpoint'],
  ['orders.checkpoint:reserve', 'after', 'checkpoint written, answer lost'],
  ['payments.charge', 'before', 'provider unreachable'],
  ['payments.charge', 'after', 'charged, answer lost (timeout: unknown outcome)'],
  ['orders.checkpoint:charge', 'before', 'crash after the charge, before its checkpoint'],
  ['orders.checkpoint:charge', 'after', 'checkpoint written, answer lost'],
  ['inventory.commit', 'before', 'stock unreachable at the sale'],
  ['inventory.commit', 'after', 'sold, answer lost'],
  ['orders.complete', 'before', 'crash after the sale, before the PROCESSED mark'],
];

for (const [point, phase, what] of interruptions) {
  test(`when ${point} fails ${phase} its effect (${what}) and the order runs again, then every effect happened once`, async (t) => {
    const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
    const order = world.place();
    world.faults.failNext(point, phase);

    const first = await world.attempt(order.id);
    const second = await world.attempt(order.id);

    t.true(first instanceof Error, String(first));
    t.is(second, 'processed');
    t.is(world.orders.status(order.id), 'PROCESSED');
    t.is(world.inventory.reservations(order.id), 1);
    t.is(world.inventory.sales(order.id), 1);
    t.deepEqual(world.inventory.levels('SKU-1'), { available: 8, reserved: 0, sold: 2 });
    t.is(world.payments.succeeded(order.id), 1);
    t.is(world.payments.refunded(order.id), 0);
    // The provider saw one charge request: a later claim asks for the charge before charging.
    t.is(world.payments.chargeRequests(order.id).length, 1);
    const [charge] = world.payments.standing(order.id);
    t.deepEqual(checkpoints(world, order.id), ['reserve:done', `charge:done:${charge.id}`, 'confirm:done']);
  });
}

test('when any single call of a run fails, before or after its effect, then the next attempt finishes with every effect once', async (t) => {
  const clean = createSagaWorld();
  await clean.attempt(clean.place().id);
  const callsOfACleanRun = clean.faults.calls;
  t.is(callsOfACleanRun, 6); // reserve, checkpoint, charge, checkpoint, commit, complete

  for (let n = 1; n <= callsOfACleanRun; n += 1) {
    for (const phase of ['before', 'after'] as const) {
      const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
      const order = world.place();
      world.faults.failCall(n, phase);

      t.true((await world.attempt(order.id)) instanceof Error, `call ${n} ${phase}`);
      // The PROCESSED mark may have landed with its answer lost: then there is nothing left to run.
      if (world.orders.status(order.id) === 'PENDING') t.is(await world.attempt(order.id), 'processed');

      t.is(world.orders.status(order.id), 'PROCESSED', `call ${n} ${phase}`);
      t.is(world.payments.succeeded(order.id), 1, `call ${n} ${phase}`);
      t.is(world.inventory.sales(order.id), 1, `call ${n} ${phase}`);
      t.deepEqual(world.inventory.levels('SKU-1'), { available: 8, reserved: 0, sold: 2 }, `call ${n} ${phase}`);
    }
  }
});

test('when a charge times out after the provider charged, then the next attempt finds that charge and charges nothing more', async (t) => {
  const world = createSagaWorld();
  const order = world.place();
  world.faults.failNext('payments.charge', 'after');

  const first = await world.attempt(order.id);

  t.true(first instanceof PaymentUnavailableError);
  t.is(world.payments.succeeded(order.id), 1);
  t.deepEqual(checkpoints(world, order.id), ['reserve:done']);

  t.is(await world.attempt(order.id), 'processed');
  const [charge] = world.payments.standing(order.id);
  t.is(world.faults.count('payments.findCharge'), 1);
  t.is(world.faults.count('payments.charge'), 1);
  t.is(world.orders.get(order.id).steps?.charge?.ref, charge.id);
});

test('when a later claim finds no charge under the key, then it charges, with its claim count', async (t) => {
  const world = createSagaWorld();
  const order = world.place();
  world.faults.failNext('payments.charge', 'before');

  await world.attempt(order.id);
  await world.attempt(order.id);

  t.is(world.faults.count('payments.findCharge'), 1);
  t.like(world.payments.chargeRequests(order.id), [{ claims: 2 }]);
  t.is(world.payments.succeeded(order.id), 1);
});

for (const [name, error] of [
  ['PaymentUnavailableError', new PaymentUnavailableError('provider 503')],
  ['CircuitOpenError', new CircuitOpenError(750)],
  ['any other error', new Error('MongoServerSelectionError')],
] as const) {
  test(`when the provider call throws ${name}, then run rejects with that very error and the order holds its reservation`, async (t) => {
    const world = createSagaWorld();
    const order = world.place();
    world.faults.failNext('payments.charge', 'before', error);

    const thrown = await t.throwsAsync(world.saga.run(world.orders.claim(order.id)));

    t.is(thrown, error);
    t.is(world.inventory.hold(order.id), 'reserved');
    t.deepEqual(checkpoints(world, order.id), ['reserve:done']);
  });
}

test('when the run is aborted before a step, then it rejects with the abort reason and makes no call', async (t) => {
  const world = createSagaWorld();
  const order = world.place();
  const controller = new AbortController();
  controller.abort(new Error('shutting down'));

  const thrown = await t.throwsAsync(world.saga.run(world.orders.claim(order.id), { signal: controller.signal }));

  t.is(thrown?.message, 'shutting down');
  t.is(world.faults.calls, 0);
});

// --- business refusals ----------------------------------------------------------------------------

test('when the stock is short, then the order is rejected OUT_OF_STOCK with nothing held and nothing charged', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 1 } });
  const order = world.place();

  const result = await world.saga.run(world.orders.claim(order.id));

  t.deepEqual(result, { outcome: 'rejected', reason: 'OUT_OF_STOCK', detail: 'not enough stock of SKU-1' });
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 1, reserved: 0, sold: 0 });
  t.is(world.inventory.hold(order.id), 'none');
  t.is(world.faults.count('payments.charge'), 0);
  t.deepEqual(checkpoints(world, order.id), []);
});

test('when the second item of an order is short, then the first is given back and the reason names the second', async (t) => {
  const world = createSagaWorld({ stock: { A: 5, B: 1 } });
  const order = world.place({
    items: [
      { sku: 'A', quantity: 2, unitPriceCents: 100 },
      { sku: 'B', quantity: 2, unitPriceCents: 100 },
    ],
  });

  t.is(await world.attempt(order.id), 'rejected');
  t.is(world.orders.rejectionReason(order.id), 'OUT_OF_STOCK');
  t.deepEqual(world.inventory.levels('A'), { available: 5, reserved: 0, sold: 0 });
  t.deepEqual(world.inventory.levels('B'), { available: 1, reserved: 0, sold: 0 });
});

test('when the payment is declined, then the order is rejected, its reservation released and recorded, no charge standing', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place({ metadata: { testCard: 'declined' } });

  const result = await world.saga.run(world.orders.claim(order.id));

  t.like(result, { outcome: 'rejected', reason: 'PAYMENT_DECLINED' });
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 10, reserved: 0, sold: 0 });
  t.is(world.inventory.hold(order.id), 'none');
  t.is(world.payments.succeeded(order.id), 0);
  t.deepEqual(world.payments.standing(order.id), []);
  t.deepEqual(checkpoints(world, order.id), ['reserve:compensated']);
  t.deepEqual(world.orders.events(order.id), ['reserve done', 'reserve compensated']);
});

for (const point of ['inventory.release', 'orders.compensated:reserve']) {
  test(`when ${point} fails after a decline, then the next attempt is declined again and releases the stock once`, async (t) => {
    const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
    const order = world.place({ metadata: { testCard: 'declined' } });
    world.faults.failNext(point);

    t.true((await world.attempt(order.id)) instanceof Error);
    t.is(await world.attempt(order.id), 'rejected');

    t.is(world.orders.rejectionReason(order.id), 'PAYMENT_DECLINED');
    t.is(world.inventory.releases(order.id), 1);
    t.deepEqual(world.inventory.levels('SKU-1'), { available: 10, reserved: 0, sold: 0 });
    t.is(world.payments.chargeRequests(order.id).length, 1);
    t.deepEqual(checkpoints(world, order.id), ['reserve:compensated']);
  });
}

// --- compensation ---------------------------------------------------------------------------------

test('when a charged order dies and is compensated, then it is refunded once, its stock released, both recorded', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place();
  await dieAfterCharge(world, order.id);
  const [charge] = world.payments.standing(order.id);

  await world.compensate(order.id);

  t.is(world.orders.status(order.id), 'FAILED');
  t.is(world.payments.refunded(order.id), 1);
  t.deepEqual(world.payments.standing(order.id), []);
  t.is(world.inventory.releases(order.id), 1);
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 10, reserved: 0, sold: 0 });
  t.deepEqual(checkpoints(world, order.id), ['reserve:compensated', `charge:compensated:${charge.id}`]);
  t.deepEqual(world.orders.events(order.id).slice(2), [`charge compensated ${charge.id}`, 'reserve compensated']);
});

const compensationFailures: [string, FaultPhase, string][] = [
  ['payments.refund', 'before', 'provider unreachable'],
  ['payments.refund', 'after', 'refunded, answer lost'],
  ['orders.compensated:charge', 'before', 'crash after the refund, before it is recorded'],
  ['inventory.release', 'before', 'stock unreachable'],
  ['inventory.release', 'after', 'released, answer lost'],
  ['orders.compensated:reserve', 'before', 'crash after the release, before it is recorded'],
];

for (const [point, phase, what] of compensationFailures) {
  test(`when compensation fails at ${point} ${phase} its effect (${what}) and is retried, then one refund and one release`, async (t) => {
    const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
    const order = world.place();
    await dieAfterCharge(world, order.id);
    const [charge] = world.payments.standing(order.id);
    world.faults.failNext(point, phase);

    await t.throwsAsync(world.compensate(order.id));
    await world.compensate(order.id);

    t.is(world.payments.refunded(order.id), 1);
    t.deepEqual(world.payments.standing(order.id), []);
    t.is(world.inventory.releases(order.id), 1);
    t.deepEqual(world.inventory.levels('SKU-1'), { available: 10, reserved: 0, sold: 0 });
    t.deepEqual(checkpoints(world, order.id), ['reserve:compensated', `charge:compensated:${charge.id}`]);
    t.deepEqual(world.orders.events(order.id).slice(2), [`charge compensated ${charge.id}`, 'reserve compensated']);
  });
}

test('when the refund fails, then the reservation is kept until the refund is done (reverse order)', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place();
  await dieAfterCharge(world, order.id);
  world.faults.failNext('payments.refund');

  const thrown = await t.throwsAsync(world.compensate(order.id));

  t.true(thrown instanceof PaymentUnavailableError);
  t.is(world.inventory.hold(order.id), 'reserved');
  t.is(world.faults.count('inventory.release'), 0);
});

test('when a compensated order is compensated again, then nothing more happens', async (t) => {
  const world = createSagaWorld();
  const order = world.place();
  await dieAfterCharge(world, order.id);
  await world.compensate(order.id);
  const events = world.orders.events(order.id);
  const refundCalls = world.faults.count('payments.refund');

  await world.compensate(order.id);

  t.deepEqual(world.orders.events(order.id), events);
  t.is(world.faults.count('payments.refund'), refundCalls);
  t.is(world.payments.refunded(order.id), 1);
  t.is(world.inventory.releases(order.id), 1);
});

test('when an order dies between its charge and the checkpoint, then compensation finds the charge and refunds it', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place();
  world.faults.failNext('orders.checkpoint:charge');
  await world.attempt(order.id, { last: true });
  const [charge] = world.payments.standing(order.id);
  t.deepEqual(checkpoints(world, order.id), ['reserve:done']);

  await world.compensate(order.id);

  t.deepEqual(world.payments.standing(order.id), []);
  t.is(world.payments.refunded(order.id), 1);
  t.deepEqual(checkpoints(world, order.id), ['reserve:compensated', `charge:compensated:${charge.id}`]);
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 10, reserved: 0, sold: 0 });
});

test('when an order dies between its reservation and the checkpoint, then compensation releases the stock it holds', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place();
  world.faults.failNext('orders.checkpoint:reserve');
  await world.attempt(order.id, { last: true });
  t.is(world.inventory.hold(order.id), 'reserved');

  await world.compensate(order.id);

  t.is(world.inventory.hold(order.id), 'none');
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 10, reserved: 0, sold: 0 });
  t.is(world.faults.count('payments.refund'), 0);
  // Nothing was recorded as done, so nothing is recorded as undone.
  t.deepEqual(world.orders.events(order.id), []);
});

test('when an order never claimed is cancelled and compensated, then no port is called', async (t) => {
  const world = createSagaWorld();
  const order = world.place();
  world.orders.cancel(order.id);

  await world.compensate(order.id);

  t.is(world.faults.calls, 0);
});

test('when a cancelled order still holds a charge, then compensation refunds it once', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place();
  world.faults.failNext('inventory.commit');
  await world.attempt(order.id); // back to PENDING, charged
  world.orders.cancel(order.id);

  await compensateFully(world, order.id);
  await world.compensate(order.id);

  t.is(world.orders.status(order.id), 'CANCELLED');
  t.is(world.payments.refunded(order.id), 1);
  t.deepEqual(world.payments.standing(order.id), []);
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 10, reserved: 0, sold: 0 });
});

test('when a confirmed order is compensated, then it refuses and changes nothing', async (t) => {
  const world = createSagaWorld();
  const order = world.place();
  await world.attempt(order.id);
  const calls = world.faults.calls;

  await t.throwsAsync(world.saga.compensate(world.orders.get(order.id)), { message: /confirmed/ });
  t.is(world.faults.calls, calls);
});

// --- reprocessing a compensated order -------------------------------------------------------------

test('when a refunded dead order is reprocessed, then it runs from reserve and is charged under a new key, one charge standing', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place();
  await dieAfterCharge(world, order.id);
  await world.compensate(order.id);
  const [first] = world.payments.charges(order.id);
  world.orders.reprocess(order.id);

  t.is(await world.attempt(order.id), 'processed');

  const charges = world.payments.charges(order.id);
  t.is(charges.length, 2);
  t.like(charges[0], { id: first.id, key: `${order.id}:charge`, refundId: first.refundId });
  t.like(charges[1], { status: 'succeeded', key: chargeKey(order.id, first.id), refundId: undefined });
  t.not(charges[1].id, first.id);
  t.deepEqual(
    world.payments.standing(order.id).map((c) => c.id),
    [charges[1].id],
  );
  t.is(world.inventory.reservations(order.id), 2);
  t.is(world.inventory.sales(order.id), 1);
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 8, reserved: 0, sold: 2 });
  t.deepEqual(checkpoints(world, order.id), ['reserve:done', `charge:done:${charges[1].id}`, 'confirm:done']);
});

test('when an order dies, is refunded and reprocessed twice, then each series has its own key and one charge stands', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place();
  for (let series = 0; series < 2; series += 1) {
    await dieAfterCharge(world, order.id);
    await world.compensate(order.id);
    world.orders.reprocess(order.id);
  }

  t.is(await world.attempt(order.id), 'processed');

  const charges = world.payments.charges(order.id);
  t.deepEqual(
    charges.map((c) => c.key),
    [`${order.id}:charge`, `${order.id}:charge:${charges[0].id}`, `${order.id}:charge:${charges[1].id}`],
  );
  t.is(world.payments.standing(order.id).length, 1);
  t.is(world.payments.refunded(order.id), 2);
  t.is(world.inventory.sales(order.id), 1);
});

test('when a reprocessed order crashes between its new charge and the checkpoint and dies, then the new charge is refunded too', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place();
  await dieAfterCharge(world, order.id);
  await world.compensate(order.id);
  world.orders.reprocess(order.id);
  world.faults.failNext('orders.checkpoint:charge');
  await world.attempt(order.id, { last: true });
  t.is(world.payments.standing(order.id).length, 1);

  await world.compensate(order.id);

  t.deepEqual(world.payments.standing(order.id), []);
  t.is(world.payments.refunded(order.id), 2);
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 10, reserved: 0, sold: 0 });
});

test('when the provider ignores the new key and hands back the refunded charge, then the run fails instead of shipping unpaid', async (t) => {
  const world = createSagaWorld({ ignoreKeys: true });
  const order = world.place();
  await dieAfterCharge(world, order.id);
  await world.compensate(order.id);
  world.orders.reprocess(order.id);

  const outcome = await world.attempt(order.id);

  t.regex(String(outcome), /refunded charge/);
  t.is(world.orders.status(order.id), 'PENDING');
  t.is(world.inventory.sales(order.id), 0);
  t.deepEqual(world.payments.standing(order.id), []);
});

test('when an order dies after its sale but before PROCESSED, then its sale has begun, and a run resumes at confirm without selling or charging again', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place();
  world.faults.failNext('orders.complete');
  await world.attempt(order.id, { last: true });
  t.is(world.inventory.hold(order.id), 'sold');
  t.true(await world.saga.saleBegun(world.orders.get(order.id)));

  world.orders.reprocess(order.id);
  t.is(await world.attempt(order.id), 'processed');

  t.is(world.inventory.sales(order.id), 1);
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 8, reserved: 0, sold: 2 });
  t.is(world.payments.standing(order.id).length, 1);
  t.is(world.payments.chargeRequests(order.id).length, 1);
});

test('when an order that died after its sale is compensated (a cancel), then the money is returned and the stock stays sold', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place();
  world.faults.failNext('orders.complete');
  await world.attempt(order.id, { last: true });

  await world.compensate(order.id);

  // A sale is final (the inventory port has no way back): the stock stays sold, the money is returned.
  t.deepEqual(world.payments.standing(order.id), []);
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 8, reserved: 0, sold: 2 });
  t.is(checkpoints(world, order.id)[0], 'reserve:compensated:sold');
  t.false(await world.saga.saleBegun(world.orders.get(order.id)));
});

test('when a dead order held its reservation (no sale), or holds only untracked SKUs, then its sale has not begun', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const held = world.place();
  await dieAfterCharge(world, held.id);
  t.is(world.inventory.hold(held.id), 'reserved');
  t.false(await world.saga.saleBegun(world.orders.get(held.id)));

  const untracked = world.place({ items: [{ sku: 'NOT-STOCKED', quantity: 1, unitPriceCents: 100 }] });
  world.faults.failNext('orders.complete');
  await world.attempt(untracked.id, { last: true });
  t.false(await world.saga.saleBegun(world.orders.get(untracked.id)));
});

// --- free orders ----------------------------------------------------------------------------------

test('when an order costs nothing, then the provider is not called, and compensating it refunds nothing', async (t) => {
  const world = createSagaWorld({ stock: { 'SKU-1': 10 } });
  const order = world.place({ items: [{ sku: 'SKU-1', quantity: 1, unitPriceCents: 0 }] });
  await dieAfterCharge(world, order.id);

  await world.compensate(order.id);

  t.is(world.faults.count('payments.charge') + world.faults.count('payments.findCharge'), 0);
  t.is(world.faults.count('payments.refund'), 0);
  t.deepEqual(checkpoints(world, order.id), ['reserve:compensated', 'charge:compensated']);
  t.deepEqual(world.inventory.levels('SKU-1'), { available: 10, reserved: 0, sold: 0 });
});

// --- the step observer ----------------------------------------------------------------------------

test('when steps end, then the observer hears each one that ran, with its outcome, and none that was skipped', async (t) => {
  const events: SagaStepEvent[] = [];
  const world = createSagaWorld({ onStep: (event) => events.push(event) });
  const order = world.place();
  const declined = world.place({ metadata: { testCard: 'declined' } });
  const dying = world.place();
  world.faults.failNext('orders.checkpoint:charge');

  await world.attempt(order.id);
  await world.attempt(order.id);
  await world.attempt(declined.id);
  await dieAfterCharge(world, dying.id);
  await world.compensate(dying.id);

  const seen = events.map(
    (e) => `${e.orderId === order.id ? 'o' : e.orderId === declined.id ? 'd' : 'x'} ${e.step} ${e.outcome}`,
  );
  t.deepEqual(seen, [
    'o reserve done',
    'o charge failed',
    'o charge done',
    'o confirm done',
    'd reserve done',
    'd reserve compensated',
    'd charge rejected',
    'x reserve done',
    'x charge done',
    'x confirm failed',
    'x charge compensated',
    'x reserve compensated',
  ]);
  t.true(events.every((e) => e.ms >= 0));
});

test('when the observer throws, then the run is not affected', async (t) => {
  const world = createSagaWorld({
    onStep: () => {
      throw new Error('metrics broke');
    },
  });
  const order = world.place();

  t.is(await world.attempt(order.id), 'processed');
});

// --- a property over random failures --------------------------------------------------------------

const orderSpec = fc.record({
  items: fc.array(
    fc.record({
      sku: fc.constantFrom('A', 'B', 'UNTRACKED'),
      quantity: fc.integer({ min: 1, max: 2 }),
      unitPriceCents: fc.constantFrom(0, 100, 250),
    }),
    { minLength: 1, maxLength: 2 },
  ),
  declined: fc.constantFrom(false, false, false, true),
  /** What an operator does with the order if it dies. */
  afterDeath: fc.constantFrom('reprocess', 'cancel', 'leave'),
});

const faultPlan = fc.array(
  fc.record({ call: fc.integer({ min: 1, max: 80 }), phase: fc.constantFrom<FaultPhase>('before', 'after') }),
  { maxLength: 30 },
);

/** Asks the saga whether the order's sale had begun, again while an injected fault answers instead. */
async function saleBegun(world: SagaWorld, id: string): Promise<boolean> {
  for (let i = 0; i < 50; i += 1) {
    try {
      return await world.saga.saleBegun(world.orders.get(id));
    } catch {
      // an injected fault: ask again
    }
  }
  throw new Error(`could not tell whether the sale of ${id} had begun`);
}

/**
 * Plays one order to its end: attempts (2 per series, so that orders die often enough), death,
 * compensation, maybe a reprocess or a cancel.
 */
async function settle(world: SagaWorld, id: string, afterDeath: 'reprocess' | 'cancel' | 'leave') {
  for (let series = 1; series <= 2; series += 1) {
    for (let attempt = 1; attempt <= 2 && world.orders.status(id) === 'PENDING'; attempt += 1) {
      await world.attempt(id, { last: attempt === 2 });
    }
    if (world.orders.status(id) !== 'FAILED') return;
    // As the processing service does: a dead order whose sale had begun is not undone, it rolls
    // forward when reprocessed (a cancel still refunds it, below).
    if (!(await saleBegun(world, id))) await compensateFully(world, id);
    if (afterDeath === 'cancel') {
      world.orders.cancel(id);
      await compensateFully(world, id);
      return;
    }
    if (afterDeath === 'leave' || series === 2) return;
    world.orders.reprocess(id);
  }
}

test('when any calls fail before or after their effect, then no order is charged or sold twice and a compensated order holds nothing', async (t) => {
  const property = fc.assert(
    fc.asyncProperty(
      fc.record({ A: fc.integer({ min: 0, max: 4 }), B: fc.integer({ min: 0, max: 4 }) }),
      fc.array(orderSpec, { minLength: 1, maxLength: 4 }),
      faultPlan,
      async (stock, specs, plan) => {
        const world = createSagaWorld({ stock });
        for (const { call, phase } of plan) world.faults.failCall(call, phase);
        const placed = specs.map((spec) => ({
          spec,
          order: world.place({ items: spec.items, ...(spec.declined ? { metadata: { testCard: 'declined' } } : {}) }),
        }));

        await Promise.all(placed.map(({ order, spec }) => settle(world, order.id, spec.afterDeath)));

        for (const { order, spec } of placed) {
          const status = world.orders.status(order.id);
          const standing = world.payments.standing(order.id).length;
          const hold = world.inventory.hold(order.id);
          const label = `${order.id} ${status} hold ${hold}, ${standing} standing`;
          if (standing > 1 || world.inventory.sales(order.id) > 1) return false;
          if (status === 'PROCESSED') {
            if (standing !== (order.totalCents > 0 ? 1 : 0) || hold !== 'sold') throw new Error(label);
            if (spec.declined && order.totalCents > 0) throw new Error(`${label}: a declined card was processed`);
          } else if (status === 'FAILED' && (await saleBegun(world, order.id))) {
            // Died after its sale, left dead: the sale and its charge stand until a reprocess completes it.
            if (standing !== (order.totalCents > 0 ? 1 : 0)) throw new Error(label);
          } else if (['REJECTED', 'FAILED', 'CANCELLED'].includes(status)) {
            if (standing !== 0 || hold === 'reserved') throw new Error(label);
          } else {
            throw new Error(`${label}: not settled`);
          }
        }
        for (const sku of ['A', 'B']) {
          const levels = world.inventory.levels(sku);
          const sold = placed
            .filter(({ order }) => world.inventory.hold(order.id) === 'sold')
            .flatMap(({ order }) => order.items)
            .filter((item) => item.sku === sku)
            .reduce((sum, item) => sum + item.quantity, 0);
          if (levels?.reserved !== 0 || levels.sold !== sold)
            throw new Error(`${sku}: ${JSON.stringify(levels)}, sold ${sold}`);
        }
        return world.inventory.unbalanced().length === 0;
      },
    ),
    { numRuns: 400 },
  );
  await t.notThrowsAsync(property);
});
