import test, { type ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import { createLogger } from '#common';
import {
  createHttpPaymentProvider,
  type BreakerSettings,
  type HttpPaymentProvider,
} from '../../worker/payments/http-payment-provider.js';
import { createPaymentMetrics } from '../../worker/payments/payment-metrics.js';
import { createPaymentProvider } from '../../worker/payments/payment-provider.js';
import { PaymentRequestError } from '../../worker/payments/payment-request-error.js';
import { CircuitOpenError, PaymentUnavailableError, type ChargeRequest } from '../../worker/saga/ports.js';
import { startTestSandbox, type TestSandbox } from '../helpers/payment-sandbox.js';
import { waitFor } from '../helpers/wait.js';

// No MongoDB or Redis here: the provider speaks HTTP to a real sandbox on port 0, one per test.

const BREAKER: BreakerSettings = { resetMs: 1000, windowMs: 10_000, errorThresholdPercent: 50, volumeThreshold: 3 };

interface Rig {
  readonly sandbox: TestSandbox;
  readonly provider: HttpPaymentProvider;
  readonly registry: Registry;
}

async function rig(
  t: ExecutionContext,
  options: { timeoutMs?: number; breaker?: Partial<BreakerSettings> } = {},
): Promise<Rig> {
  const sandbox = await startTestSandbox();
  const registry = new Registry();
  const provider = createHttpPaymentProvider({
    baseUrl: sandbox.url,
    timeoutMs: options.timeoutMs ?? 2000,
    breaker: { ...BREAKER, ...options.breaker },
    metrics: createPaymentMetrics(registry),
    logger: createLogger({ service: 'test', level: 'silent' }),
  });
  t.teardown(async () => {
    provider.close();
    await sandbox.close();
  });
  return { sandbox, provider, registry };
}

const request = (orderId: string, extra: Partial<ChargeRequest> = {}): ChargeRequest => ({
  orderId,
  amountCents: 4200,
  currency: 'EUR',
  claims: 1,
  ...extra,
});

/**
 * One answered call first: on a loaded machine the first requests of a process (modules, JIT) can
 * take longer than the short timeouts these tests use on purpose.
 */
async function warm(provider: HttpPaymentProvider): Promise<void> {
  await waitFor('a first answer from the sandbox', async () =>
    provider.findCharge('ord_warm').then(
      () => true,
      () => undefined,
    ),
  );
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  const sample = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return sample?.value ?? 0;
}

test('when an order is charged, then the sandbox holds one charge that a repeat returns and findCharge finds', async (t) => {
  const { sandbox, provider } = await rig(t);

  const charge = await provider.charge(request('ord_1'));
  const again = await provider.charge(request('ord_1', { claims: 2 }));
  const found = await provider.findCharge('ord_1');

  t.like(charge, { orderId: 'ord_1', status: 'succeeded', amountCents: 4200 });
  t.deepEqual(again, charge);
  t.deepEqual(found, charge);
  t.is(await provider.findCharge('ord_never'), null);
  const listed = await sandbox.charges('ord_1');
  t.is(listed.length, 1);
  t.is(listed[0].currency, 'EUR');
  t.like(await sandbox.stats(), { charges: 1 });
});

test('when the test card is "declined", then the charge comes back declined and the breaker does not count it', async (t) => {
  const { provider } = await rig(t, { breaker: { volumeThreshold: 1 } });

  for (let i = 0; i < 5; i += 1) {
    const charge = await provider.charge(request(`ord_d${i}`, { testCard: 'declined' }));
    t.is(charge.status, 'declined');
  }

  t.is(provider.breakerState(), 'closed');
});

test('when a charge is refunded twice, then one refund is made under the order key', async (t) => {
  const { sandbox, provider } = await rig(t);
  const charge = await provider.charge(request('ord_r'));

  const first = await provider.refund({ orderId: 'ord_r', chargeId: charge.id, amountCents: 4200 });
  const again = await provider.refund({ orderId: 'ord_r', chargeId: charge.id, amountCents: 4200 });

  t.is(again.id, first.id);
  const [listed] = await sandbox.charges('ord_r');
  t.deepEqual(
    listed.refunds.map((r) => ({ id: r.id, amountCents: r.amountCents })),
    [{ id: first.id, amountCents: 4200 }],
  );
});

test('when a declined charge is refunded, then it is a request error that never opens the breaker', async (t) => {
  const { provider } = await rig(t, { breaker: { volumeThreshold: 1 } });
  const declined = await provider.charge(request('ord_x', { testCard: 'declined' }));

  for (let i = 0; i < 4; i += 1) {
    const error = await t.throwsAsync(provider.refund({ orderId: 'ord_x', chargeId: declined.id, amountCents: 4200 }), {
      instanceOf: PaymentRequestError,
    });
    t.is(error?.status, 409);
  }

  t.is(provider.breakerState(), 'closed');
});

test('when the sandbox answers 500 or 503 or drops the connection, then the call throws PaymentUnavailableError', async (t) => {
  const { sandbox, provider, registry } = await rig(t, { breaker: { volumeThreshold: 100 } });

  await sandbox.configure({ failureRate: 1 });
  await t.throwsAsync(provider.charge(request('ord_5')), { instanceOf: PaymentUnavailableError });
  await t.throwsAsync(provider.findCharge('ord_5'), { instanceOf: PaymentUnavailableError });
  await sandbox.configure({ failureRate: 0, outage: '503' });
  await t.throwsAsync(provider.charge(request('ord_5')), { instanceOf: PaymentUnavailableError });
  await sandbox.configure({ outage: 'reset' });
  await t.throwsAsync(provider.charge(request('ord_5')), { instanceOf: PaymentUnavailableError });
  await sandbox.configure({ outage: 'none' });

  t.deepEqual(await sandbox.charges('ord_5'), [], 'no failure left a charge');
  t.is(
    await metricValue(registry, 'payment_provider_errors_total', { operation: 'charge', outcome: 'server_error' }),
    2,
  );
  t.is(await metricValue(registry, 'payment_provider_errors_total', { operation: 'charge', outcome: 'network' }), 1);
  t.is(
    await metricValue(registry, 'payment_provider_errors_total', { operation: 'find_charge', outcome: 'server_error' }),
    1,
  );
});

test('when every call fails, then the breaker opens, no call reaches the sandbox while open, and it half-opens then closes', async (t) => {
  // A reset period long enough that a loaded machine cannot let it pass during the refusals below.
  const resetMs = 3000;
  const { sandbox, provider, registry } = await rig(t, { breaker: { resetMs } });
  await sandbox.configure({ failureRate: 1 });

  // volumeThreshold 3: the third failure in the window opens the breaker. That call's failure is part
  // of the outage the breaker now stands for: it comes back as CircuitOpenError (a wait, not a spent attempt).
  for (let i = 0; i < 3; i += 1) {
    t.is(provider.breakerState(), 'closed', `closed before failure ${i + 1}`);
    const expected = i < 2 ? PaymentUnavailableError : CircuitOpenError;
    t.true((await t.throwsAsync(provider.charge(request(`ord_b${i}`)))) instanceof expected, `failure ${i + 1}`);
  }
  t.is(provider.breakerState(), 'open');
  t.is(await metricValue(registry, 'payment_breaker_state'), 2);
  const callsWhenOpened = (await sandbox.stats()).calls;
  t.is(callsWhenOpened, 3);

  // Open: refused at once, with the time left until it may half-open.
  const refusals: CircuitOpenError[] = [];
  for (let i = 0; i < 10; i += 1) {
    refusals.push((await t.throwsAsync(provider.charge(request(`ord_o${i}`)), { instanceOf: CircuitOpenError }))!);
  }
  await t.throwsAsync(provider.findCharge('ord_o0'), { instanceOf: CircuitOpenError });
  t.is((await sandbox.stats()).calls, callsWhenOpened, 'no call made while open');
  for (const refusal of refusals) t.true(refusal.retryAfterMs > 0 && refusal.retryAfterMs <= resetMs);

  // The provider recovers; after resetMs the breaker lets one trial call through, and it closes.
  await sandbox.configure({ failureRate: 0 });
  await waitFor(
    'the breaker to half-open',
    async () => (provider.breakerState() === 'half_open' ? true : undefined),
    5000,
  );
  t.is(await metricValue(registry, 'payment_breaker_state'), 1);
  const charge = await provider.charge(request('ord_after'));

  t.is(charge.status, 'succeeded');
  t.is(provider.breakerState(), 'closed');
  t.is(await metricValue(registry, 'payment_breaker_state'), 0);
  t.is((await sandbox.stats()).calls, callsWhenOpened + 1);
  for (const to of ['open', 'half_open', 'closed']) {
    t.is(await metricValue(registry, 'payment_breaker_transitions_total', { to }), 1, to);
  }
  t.is(
    await metricValue(registry, 'payment_provider_errors_total', { operation: 'charge', outcome: 'circuit_open' }),
    10,
  );
});

test('when the trial call of a half-open breaker fails, then it opens again', async (t) => {
  const { sandbox, provider, registry } = await rig(t);
  await sandbox.configure({ outage: '503' });
  for (let i = 0; i < 3; i += 1) await t.throwsAsync(provider.charge(request(`ord_h${i}`)));
  await waitFor(
    'the breaker to half-open',
    async () => (provider.breakerState() === 'half_open' ? true : undefined),
    5000,
  );

  // The failed trial re-opens the breaker, so the caller is told to wait for it, not to spend an attempt.
  await t.throwsAsync(provider.charge(request('ord_trial')), { instanceOf: CircuitOpenError });

  t.is(provider.breakerState(), 'open');
  const refusal = await t.throwsAsync(provider.charge(request('ord_next')), { instanceOf: CircuitOpenError });
  t.true(refusal!.retryAfterMs > BREAKER.resetMs / 2, 'a full reset period again');
  t.is(await metricValue(registry, 'payment_breaker_transitions_total', { to: 'open' }), 2);
});

test('when the sandbox answers past the timeout, then the charge is unavailable, and findCharge finds the charge made', async (t) => {
  const { sandbox, provider, registry } = await rig(t, { timeoutMs: 1000, breaker: { volumeThreshold: 100 } });
  await warm(provider);
  await sandbox.configure({ slowMs: 10_000 });
  const started = performance.now();

  const error = await t.throwsAsync(provider.charge(request('ord_slow')), { instanceOf: PaymentUnavailableError });
  const elapsed = performance.now() - started;
  // The caller gave up; on a loaded machine the request may reach the sandbox after that, so wait for it.
  await waitFor('the sandbox to make the charge', async () =>
    (await sandbox.stats()).charges === 1 ? true : undefined,
  );
  const found = await provider.findCharge('ord_slow');

  t.regex(error!.message, /did not answer within 1000 ms/);
  t.true(elapsed < 5000, `gave up after ${Math.round(elapsed)} ms`);
  t.like(found, { orderId: 'ord_slow', status: 'succeeded', amountCents: 4200 });
  t.is(await metricValue(registry, 'payment_provider_errors_total', { operation: 'charge', outcome: 'timeout' }), 1);
});

test('when a charge that timed out is repeated, then the sandbox holds exactly one succeeded charge', async (t) => {
  const { sandbox, provider } = await rig(t, { timeoutMs: 1000, breaker: { volumeThreshold: 100 } });
  await warm(provider);
  await sandbox.configure({ slowMs: 10_000 });
  await t.throwsAsync(provider.charge(request('ord_twice')), { instanceOf: PaymentUnavailableError });
  await waitFor('the sandbox to make the charge', async () =>
    (await sandbox.stats()).charges === 1 ? true : undefined,
  );

  // The next attempt charges again under the same key: the sandbox replays the charge it made (at once:
  // only the answer that carried the effect was held back).
  const charge = await provider.charge(request('ord_twice', { claims: 2 }));

  const listed = await sandbox.charges('ord_twice');
  t.is(listed.filter((c) => c.status === 'succeeded').length, 1);
  t.is(listed.length, 1);
  t.is(listed[0].id, charge.id);
  t.is((await sandbox.stats()).charges, 1);
});

test('when timeouts repeat, then they count against the breaker like any other failure', async (t) => {
  const { sandbox, provider } = await rig(t, { timeoutMs: 200 });
  await sandbox.configure({ latencyMs: 1000 });

  for (let i = 0; i < 3; i += 1) {
    // The third timeout trips the breaker: it comes back as a wait for the breaker.
    const expected = i < 2 ? PaymentUnavailableError : CircuitOpenError;
    t.true((await t.throwsAsync(provider.findCharge(`ord_t${i}`))) instanceof expected, `timeout ${i + 1}`);
  }

  t.is(provider.breakerState(), 'open');
});

test('when the worker aborts a charge (shutdown), then it stops with the abort and the breaker does not count it', async (t) => {
  const { sandbox, provider, registry } = await rig(t, { timeoutMs: 20_000, breaker: { volumeThreshold: 1 } });
  await sandbox.configure({ slowMs: 10_000 });
  const controller = new AbortController();

  const charging = provider.charge(request('ord_abort', { signal: controller.signal }));
  await waitFor('the sandbox to make the charge', async () =>
    (await sandbox.stats()).charges === 1 ? true : undefined,
  );
  controller.abort();
  const error = await charging.then(
    () => undefined,
    (err: unknown) => err as Error,
  );

  t.is(error?.name, 'AbortError');
  t.is(provider.breakerState(), 'closed');
  t.is(await metricValue(registry, 'payment_breaker_transitions_total', { to: 'open' }), 0);
  await sandbox.configure({ slowMs: 0 });
  t.like(
    await provider.findCharge('ord_abort'),
    { status: 'succeeded' },
    'the outcome is found out as after a timeout',
  );
});

test('when a provider URL is configured, then the factory picks the HTTP provider', async (t) => {
  const sandbox = await startTestSandbox();
  const provider = createPaymentProvider({
    settings: {
      paymentProviderUrl: `${sandbox.url}/`,
      paymentTimeoutMs: 2000,
      paymentBreakerResetMs: 10_000,
      paymentBreakerWindowMs: 10_000,
      paymentBreakerErrorPercent: 50,
      paymentBreakerVolume: 5,
      processingDelayMs: 0,
      failureRate: 1,
    },
    registry: new Registry(),
    logger: createLogger({ service: 'test', level: 'silent' }),
  });
  t.teardown(async () => {
    provider.close();
    await sandbox.close();
  });

  const charge = await provider.charge(request('ord_factory'));

  t.is(provider.kind, 'http');
  t.is(charge.status, 'succeeded', 'FAILURE_RATE is the simulated provider’s; the sandbox decides here');
  t.is((await sandbox.charges('ord_factory')).length, 1);
});
