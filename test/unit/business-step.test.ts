import { createHash } from 'node:crypto';
import test from 'ava';
import { randomOrderId, toOrder, type Order } from '#common';
import { storedOrder } from '../helpers/orders.js';
import { SimulatedFailure, createSimulatedStep, failureDraw } from '../../worker/services/business-step.js';

/** A complete order; the business step reads only its id. */
function orderWithId(id: string): Order {
  return toOrder(storedOrder('PROCESSING', { _id: id, attempts: 1 }, new Date('2026-01-01T00:00:00Z')));
}

/** Deterministic ids, so a statistical test that passes once passes every time. */
function fixedIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `ord_${i.toString(16).padStart(32, '0')}`);
}

/** Runs the step and reports whether it threw a SimulatedFailure (any other error fails the test). */
async function fails(step: ReturnType<typeof createSimulatedStep>, id: string, attempt: number): Promise<boolean> {
  try {
    await step(orderWithId(id), attempt);
    return false;
  } catch (err) {
    if (err instanceof SimulatedFailure) return true;
    throw err;
  }
}

// --- failureDraw --------------------------------------------------------------------------------

test('when the same id and attempt are drawn twice, then the draw is the same', (t) => {
  for (const id of fixedIds(50)) {
    t.is(failureDraw(id, 1), failureDraw(id, 1));
    t.is(failureDraw(id, 4), failureDraw(id, 4));
  }
});

test('when the attempt or the id changes, then the draw changes', (t) => {
  const [a, b] = fixedIds(2);

  t.not(failureDraw(a, 1), failureDraw(a, 2));
  t.not(failureDraw(a, 1), failureDraw(b, 1));
});

test('when a draw is made, then it is the first 32 bits of sha256(id:attempt) over 2^32', (t) => {
  for (const id of fixedIds(20)) {
    for (const attempt of [1, 2, 3]) {
      const expected = createHash('sha256').update(`${id}:${attempt}`).digest().readUInt32BE(0) / 2 ** 32;

      t.is(failureDraw(id, attempt), expected);
    }
  }
});

test('when 10000 ids are drawn, then every draw is in [0, 1) and the mean is near 0.5', (t) => {
  const draws = fixedIds(10_000).map((id) => failureDraw(id, 1));

  for (const draw of draws) {
    t.true(draw >= 0 && draw < 1, String(draw));
  }
  const mean = draws.reduce((sum, d) => sum + d, 0) / draws.length;
  t.true(mean > 0.45 && mean < 0.55, `mean ${mean}`);
});

test('when 10000 random ids are drawn, then each tenth of [0, 1) gets roughly a tenth of them', (t) => {
  const buckets = Array.from({ length: 10 }, () => 0);

  for (let i = 0; i < 10_000; i += 1) buckets[Math.floor(failureDraw(randomOrderId(), 1) * 10)] += 1;

  // expected 1000 per bucket, sd ≈ 30: 800–1200 is far outside chance.
  for (const [i, count] of buckets.entries()) t.true(count > 800 && count < 1200, `bucket ${i}: ${count}`);
});

// --- createSimulatedStep ------------------------------------------------------------------------

test('when the failure rate is 1, then every order and attempt fails with SimulatedFailure', async (t) => {
  const step = createSimulatedStep({ delayMs: 0, failureRate: 1 });

  for (const id of fixedIds(200)) {
    for (const attempt of [1, 2, 5]) {
      const error = await t.throwsAsync(step(orderWithId(id), attempt), { instanceOf: SimulatedFailure });
      t.is(error.name, 'SimulatedFailure');
      t.true(error.message.includes(id));
      t.true(error.message.includes(`attempt ${attempt}`));
    }
  }
});

test('when the failure rate is 0, then no order ever fails', async (t) => {
  const step = createSimulatedStep({ delayMs: 0, failureRate: 0 });

  for (const id of fixedIds(2000)) {
    await t.notThrowsAsync(step(orderWithId(id), 1));
  }
});

test('when the failure rate is 0.3, then about 30% of 2000 orders fail', async (t) => {
  const step = createSimulatedStep({ delayMs: 0, failureRate: 0.3 });
  let failures = 0;

  for (const id of fixedIds(2000)) if (await fails(step, id, 1)) failures += 1;

  const fraction = failures / 2000;
  t.true(fraction >= 0.25 && fraction <= 0.35, `fraction ${fraction}`);
});

test('when the failure rate is 0.3, then the same id and attempt always give the same result', async (t) => {
  const step = createSimulatedStep({ delayMs: 0, failureRate: 0.3 });
  const again = createSimulatedStep({ delayMs: 0, failureRate: 0.3 });
  let sawFailure = false;
  let sawSuccess = false;

  for (const id of fixedIds(300)) {
    for (const attempt of [1, 2, 3]) {
      const first = await fails(step, id, attempt);
      t.is(await fails(step, id, attempt), first, `${id} attempt ${attempt}`);
      t.is(await fails(again, id, attempt), first, `${id} attempt ${attempt}, new step`);
      t.is(first, failureDraw(id, attempt) < 0.3, 'fails exactly when the draw is below the rate');
      if (first) sawFailure = true;
      else sawSuccess = true;
    }
  }
  t.true(sawFailure && sawSuccess, 'both outcomes occur');
});

test('when an order fails one attempt, then a later attempt can succeed', async (t) => {
  const step = createSimulatedStep({ delayMs: 0, failureRate: 0.5 });

  const recovered = [];
  for (const id of fixedIds(200)) {
    if ((await fails(step, id, 1)) && !(await fails(step, id, 2))) recovered.push(id);
  }

  t.true(recovered.length > 0, 'failures are per attempt, not per order');
});

test('when a delay is configured, then the step waits at least that long', async (t) => {
  const step = createSimulatedStep({ delayMs: 40, failureRate: 0 });
  const started = performance.now();

  await step(orderWithId(fixedIds(1)[0]), 1);

  t.true(performance.now() - started >= 35, 'timers may fire a few ms early on some platforms');
});

test('when the signal is aborted, then the step stops with an abort error, not a SimulatedFailure', async (t) => {
  const step = createSimulatedStep({ delayMs: 5_000, failureRate: 1 });
  const controller = new AbortController();
  const started = performance.now();

  const running = step(orderWithId(fixedIds(1)[0]), 1, controller.signal);
  controller.abort();

  const error = await t.throwsAsync(running);
  t.false(error instanceof SimulatedFailure);
  t.is(error.name, 'AbortError');
  t.true(performance.now() - started < 1_000, 'the delay is cut short');
});

test('when the signal is already aborted and there is no delay, then the step does not run', async (t) => {
  const step = createSimulatedStep({ delayMs: 0, failureRate: 0 });

  // signal.throwIfAborted() throws the signal's reason, a DOMException, which ava does not count as a native error.
  await t.throwsAsync(step(orderWithId(fixedIds(1)[0]), 1, AbortSignal.abort()), { any: true, name: 'AbortError' });
});
