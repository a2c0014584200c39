import test from 'ava';
import { Registry } from 'prom-client';
import { createLogger } from '#common';
import { createPaymentMetrics } from '../../worker/payments/payment-metrics.js';
import { createPaymentProvider } from '../../worker/payments/payment-provider.js';
import { PaymentRequestError } from '../../worker/payments/payment-request-error.js';
import { createSimulatedPaymentProvider } from '../../worker/payments/simulated-payment-provider.js';
import { PaymentUnavailableError, type ChargeRequest } from '../../worker/saga/ports.js';
import { failureDraw } from '../../worker/payments/failure-draw.js';

const request = (orderId: string, extra: Partial<ChargeRequest> = {}): ChargeRequest => ({
  orderId,
  amountCents: 1250,
  currency: 'EUR',
  claims: 1,
  ...extra,
});

/** Deterministic ids, so a statistical test that passes once passes every time. */
function fixedIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `ord_${i.toString(16).padStart(32, '0')}`);
}

test('when an order is charged twice, then both calls return the one charge made under its key', async (t) => {
  const provider = createSimulatedPaymentProvider({ delayMs: 0, failureRate: 0 });

  const first = await provider.charge(request('ord_a'));
  const again = await provider.charge(request('ord_a', { claims: 2 }));

  t.like(first, { orderId: 'ord_a', status: 'succeeded', amountCents: 1250 });
  t.deepEqual(again, first);
  t.deepEqual(await provider.findCharge('ord_a'), first);
});

test('when nothing was charged for an order, then findCharge finds nothing', async (t) => {
  const provider = createSimulatedPaymentProvider({ delayMs: 0, failureRate: 0 });
  await provider.charge(request('ord_other'));

  t.is(await provider.findCharge('ord_none'), null);
});

test('when the test card is "declined", then the charge is declined', async (t) => {
  const provider = createSimulatedPaymentProvider({ delayMs: 0, failureRate: 0 });

  const charge = await provider.charge(request('ord_d', { testCard: 'declined' }));

  t.is(charge.status, 'declined');
  t.is((await provider.charge(request('ord_ok', { testCard: 'visa' }))).status, 'succeeded');
});

test('when the same key comes with another amount, then the charge is refused as a request error', async (t) => {
  const provider = createSimulatedPaymentProvider({ delayMs: 0, failureRate: 0 });
  await provider.charge(request('ord_k'));

  const error = await t.throwsAsync(provider.charge(request('ord_k', { amountCents: 1 })), {
    instanceOf: PaymentRequestError,
  });

  t.is(error?.status, 422);
});

test('when a charge fails, then it fails exactly when the business step draw says so, and leaves no charge', async (t) => {
  const failureRate = 0.4;
  const provider = createSimulatedPaymentProvider({ delayMs: 0, failureRate });
  let failures = 0;

  for (const id of fixedIds(200)) {
    for (const claims of [1, 2]) {
      const expectedToFail = failureDraw(id, claims) < failureRate;
      const outcome = await provider.charge(request(id, { claims })).then(
        () => 'charged',
        (err: unknown) => (err instanceof PaymentUnavailableError ? 'unavailable' : err),
      );
      t.is(outcome, expectedToFail ? 'unavailable' : 'charged', `${id} claim ${claims}`);
      if (expectedToFail) failures += 1;
      if (expectedToFail && claims === 1)
        t.is(await provider.findCharge(id), null, 'a failure is decided before the charge');
    }
  }
  // About 40% of 400 draws: the draw is uniform, and these ids are fixed.
  t.true(failures > 120 && failures < 200, `${failures} failures`);
});

test('when the failure rate is 1, then every charge fails; at 0, none does', async (t) => {
  const always = createSimulatedPaymentProvider({ delayMs: 0, failureRate: 1 });
  const never = createSimulatedPaymentProvider({ delayMs: 0, failureRate: 0 });

  for (const id of fixedIds(20)) {
    await t.throwsAsync(always.charge(request(id)), { instanceOf: PaymentUnavailableError });
    t.is((await never.charge(request(id))).status, 'succeeded');
  }
});

test('when a delay is set, then a charge takes at least that long', async (t) => {
  const provider = createSimulatedPaymentProvider({ delayMs: 120, failureRate: 0 });
  const started = performance.now();

  await provider.charge(request('ord_slow'));

  t.true(performance.now() - started >= 115);
});

test('when a charge is refunded twice, then one refund is made and returned both times', async (t) => {
  const provider = createSimulatedPaymentProvider({ delayMs: 0, failureRate: 0 });
  const charge = await provider.charge(request('ord_r'));

  const first = await provider.refund({ orderId: 'ord_r', chargeId: charge.id, amountCents: 1250 });
  const again = await provider.refund({ orderId: 'ord_r', chargeId: charge.id, amountCents: 1250 });

  t.regex(first.id, /^re_sim_/);
  t.deepEqual(again, first);
});

test('when a declined or unknown charge is refunded, then it is refused as a request error', async (t) => {
  const provider = createSimulatedPaymentProvider({ delayMs: 0, failureRate: 0 });
  const declined = await provider.charge(request('ord_x', { testCard: 'declined' }));

  const ofDeclined = await t.throwsAsync(
    provider.refund({ orderId: 'ord_x', chargeId: declined.id, amountCents: 1250 }),
    { instanceOf: PaymentRequestError },
  );
  const ofUnknown = await t.throwsAsync(provider.refund({ orderId: 'ord_y', chargeId: 'ch_nope', amountCents: 1 }), {
    instanceOf: PaymentRequestError,
  });

  t.is(ofDeclined?.status, 409);
  t.is(ofUnknown?.status, 404);
});

test('when the worker restarts (a new provider), then the old charges are unknown: they live in memory only', async (t) => {
  const before = createSimulatedPaymentProvider({ delayMs: 0, failureRate: 0 });
  await before.charge(request('ord_m'));

  const after = createSimulatedPaymentProvider({ delayMs: 0, failureRate: 0 });

  t.is(await after.findCharge('ord_m'), null);
});

test('when calls are made, then their latency and failures are counted by operation and outcome', async (t) => {
  const registry = new Registry();
  const metrics = createPaymentMetrics(registry);
  const ok = createSimulatedPaymentProvider({ delayMs: 0, failureRate: 0, metrics });
  const failing = createSimulatedPaymentProvider({ delayMs: 0, failureRate: 1, metrics });

  await ok.charge(request('ord_1'));
  await ok.charge(request('ord_2', { testCard: 'declined' }));
  await ok.findCharge('ord_1');
  await t.throwsAsync(failing.charge(request('ord_3')));

  const text = await registry.metrics();
  t.regex(text, /payment_provider_call_duration_seconds_count\{operation="charge",outcome="ok"\} 1/);
  t.regex(text, /payment_provider_call_duration_seconds_count\{operation="charge",outcome="declined"\} 1/);
  t.regex(text, /payment_provider_call_duration_seconds_count\{operation="find_charge",outcome="ok"\} 1/);
  t.regex(text, /payment_provider_errors_total\{operation="charge",outcome="simulated_failure"\} 1/);
  t.regex(text, /payment_breaker_state 0/);
});

test('when no provider URL is configured, then the factory picks the simulated provider with a closed breaker', async (t) => {
  const provider = createPaymentProvider({
    settings: {
      paymentProviderUrl: undefined,
      paymentTimeoutMs: 2000,
      paymentBreakerResetMs: 10_000,
      paymentBreakerWindowMs: 10_000,
      paymentBreakerErrorPercent: 50,
      paymentBreakerVolume: 5,
      processingDelayMs: 0,
      failureRate: 0,
    },
    registry: new Registry(),
    logger: createLogger({ service: 'test', level: 'silent' }),
  });
  t.teardown(() => provider.close());

  t.is(provider.kind, 'simulated');
  t.is(provider.breakerState(), 'closed');
  t.is((await provider.charge(request('ord_f'))).status, 'succeeded');
});

test('when the charge is aborted during its delay, then it stops at once and nothing is charged', async (t) => {
  const provider = createSimulatedPaymentProvider({ delayMs: 5000, failureRate: 0 });
  const controller = new AbortController();
  const started = performance.now();

  const charging = provider.charge(request('ord_abort', { signal: controller.signal }));
  setTimeout(() => controller.abort(), 50);
  const error = await t.throwsAsync(charging);

  t.is(error?.name, 'AbortError');
  t.true(performance.now() - started < 2000);
  t.is(await provider.findCharge('ord_abort'), null);
});
