import test from 'ava';
import {
  applySettingsPatch,
  DEFAULT_SANDBOX_SETTINGS,
  SandboxSettingsError,
  sandboxSettingsFromEnv,
} from '../../scripts/lib/payment-sandbox/settings.js';
import { startTestSandbox, type TestSandbox } from '../helpers/payment-sandbox.js';
import { waitFor } from '../helpers/wait.js';

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

async function post(sandbox: TestSandbox, path: string, key: string | undefined, json: unknown): Promise<Answer> {
  const res = await fetch(`${sandbox.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
    body: JSON.stringify(json),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

const chargeBody = (orderId: string, extra: Record<string, unknown> = {}) => ({
  orderId,
  amountCents: 2599,
  currency: 'EUR',
  ...extra,
});

// --- charges ------------------------------------------------------------------------------------

test('when a charge is posted, then it is made (201) and the same key again answers the same charge (200)', async (t) => {
  const sandbox = await startTestSandbox();
  t.teardown(() => sandbox.close());

  const first = await post(sandbox, '/charges', 'ord_1:charge', chargeBody('ord_1'));
  const again = await post(sandbox, '/charges', 'ord_1:charge', chargeBody('ord_1'));

  t.is(first.status, 201);
  t.like(first.body, { orderId: 'ord_1', status: 'succeeded', amountCents: 2599 });
  t.regex(first.body.id as string, /^ch_[0-9a-f]{24}$/);
  t.is(again.status, 200);
  t.is(again.headers.get('idempotent-replayed'), 'true');
  t.deepEqual(again.body, first.body);
  t.like(await sandbox.stats(), { calls: 2, charges: 1 });
});

test('when the same key comes with another body, then it is refused (422) and nothing is charged', async (t) => {
  const sandbox = await startTestSandbox();
  t.teardown(() => sandbox.close());
  await post(sandbox, '/charges', 'ord_2:charge', chargeBody('ord_2'));

  const other = await post(sandbox, '/charges', 'ord_2:charge', chargeBody('ord_2', { amountCents: 1 }));

  t.is(other.status, 422);
  t.like(other.body, { error: { code: 'IDEMPOTENCY_KEY_REUSED' } });
  t.is((await sandbox.stats()).charges, 1);
  t.is((await sandbox.charges('ord_2')).length, 1);
});

test('when a charge has no Idempotency-Key or a bad body, then it is a 400 and nothing is charged', async (t) => {
  const sandbox = await startTestSandbox();
  t.teardown(() => sandbox.close());

  const noKey = await post(sandbox, '/charges', undefined, chargeBody('ord_3'));
  const badAmount = await post(sandbox, '/charges', 'k1', chargeBody('ord_3', { amountCents: 1.5 }));
  const badCurrency = await post(sandbox, '/charges', 'k2', chargeBody('ord_3', { currency: 'euro' }));
  const extra = await post(sandbox, '/charges', 'k3', chargeBody('ord_3', { card: '4242' }));

  t.is(noKey.status, 400);
  t.like(noKey.body, { error: { code: 'IDEMPOTENCY_KEY_REQUIRED' } });
  for (const answer of [badAmount, badCurrency, extra]) {
    t.is(answer.status, 400);
    t.like(answer.body, { error: { code: 'VALIDATION_FAILED' } });
  }
  t.is((await sandbox.stats()).charges, 0);
});

test('when testCard is "declined", then the charge is made declined, and replayed declined', async (t) => {
  const sandbox = await startTestSandbox();
  t.teardown(() => sandbox.close());

  const first = await post(sandbox, '/charges', 'ord_4:charge', chargeBody('ord_4', { testCard: 'declined' }));
  const again = await post(sandbox, '/charges', 'ord_4:charge', chargeBody('ord_4', { testCard: 'declined' }));

  t.is(first.status, 201);
  t.is(first.body.status, 'declined');
  t.is(again.status, 200);
  t.is(again.body.id, first.body.id);
});

test('when twenty charges under one key arrive at once, then exactly one charge is made', async (t) => {
  const sandbox = await startTestSandbox({ latencyMs: [0, 30] });
  t.teardown(() => sandbox.close());

  const answers = await Promise.all(
    Array.from({ length: 20 }, () => post(sandbox, '/charges', 'ord_5:charge', chargeBody('ord_5'))),
  );

  t.is(answers.filter((a) => a.status === 201).length, 1);
  t.is(answers.filter((a) => a.status === 200).length, 19);
  t.is(new Set(answers.map((a) => a.body.id)).size, 1);
  t.is((await sandbox.charges('ord_5')).length, 1);
});

// --- refunds ------------------------------------------------------------------------------------

test('when a charge is refunded, then the refund is made once (201, then 200) and listed with its charge', async (t) => {
  const sandbox = await startTestSandbox();
  t.teardown(() => sandbox.close());
  const charge = (await post(sandbox, '/charges', 'ord_6:charge', chargeBody('ord_6'))).body;

  const first = await post(sandbox, `/charges/${charge.id}/refunds`, 'ord_6:refund', { amountCents: 2599 });
  const again = await post(sandbox, `/charges/${charge.id}/refunds`, 'ord_6:refund', { amountCents: 2599 });
  const [listed] = await sandbox.charges('ord_6');

  t.is(first.status, 201);
  t.like(first.body, { chargeId: charge.id, amountCents: 2599 });
  t.regex(first.body.id as string, /^re_[0-9a-f]{24}$/);
  t.is(again.status, 200);
  t.deepEqual(again.body, first.body);
  t.is((await sandbox.stats()).refunds, 1);
  t.deepEqual(
    listed.refunds.map((r) => r.id),
    [first.body.id],
  );
});

test("when a refund key is reused for another amount, then it is refused (422); on another charge it is that charge's own refund", async (t) => {
  const sandbox = await startTestSandbox();
  t.teardown(() => sandbox.close());
  const a = (await post(sandbox, '/charges', 'a:charge', chargeBody('a'))).body;
  const b = (await post(sandbox, '/charges', 'b:charge', chargeBody('b'))).body;
  await post(sandbox, `/charges/${a.id}/refunds`, 'a:refund', { amountCents: 2599 });

  const otherAmount = await post(sandbox, `/charges/${a.id}/refunds`, 'a:refund', { amountCents: 100 });
  // Keys are scoped to the charge the route names (an order charged again after a refund has a second charge).
  const otherCharge = await post(sandbox, `/charges/${b.id}/refunds`, 'a:refund', { amountCents: 2599 });

  t.is(otherAmount.status, 422);
  t.is(otherCharge.status, 201);
  t.is(otherCharge.body.chargeId, b.id);
  t.is((await sandbox.stats()).refunds, 2);
});

test('when a declined, unknown or fully refunded charge is refunded, then it is refused and nothing is refunded', async (t) => {
  const sandbox = await startTestSandbox();
  t.teardown(() => sandbox.close());
  const declined = (await post(sandbox, '/charges', 'd:charge', chargeBody('d', { testCard: 'declined' }))).body;
  const paid = (await post(sandbox, '/charges', 'p:charge', chargeBody('p'))).body;
  await post(sandbox, `/charges/${paid.id}/refunds`, 'p:refund', {});

  const ofDeclined = await post(sandbox, `/charges/${declined.id}/refunds`, 'd:refund', {});
  const ofUnknown = await post(sandbox, '/charges/ch_nope/refunds', 'x:refund', {});
  const twice = await post(sandbox, `/charges/${paid.id}/refunds`, 'p:refund-2', {});

  t.is(ofDeclined.status, 409);
  t.like(ofDeclined.body, { error: { code: 'CHARGE_NOT_REFUNDABLE' } });
  t.is(ofUnknown.status, 404);
  t.is(twice.status, 409);
  t.like(twice.body, { error: { code: 'REFUND_EXCEEDS_CHARGE' } });
  t.is((await sandbox.stats()).refunds, 1, 'only the first refund of the paid charge');
  t.is((await sandbox.charges('p'))[0].refunds[0].amountCents, 2599, 'no amount means the whole charge');
});

test('when charges are listed by order, then only that order is listed; without orderId, every charge', async (t) => {
  const sandbox = await startTestSandbox();
  t.teardown(() => sandbox.close());
  await post(sandbox, '/charges', 'x:charge', chargeBody('x'));
  await post(sandbox, '/charges', 'y:charge', chargeBody('y'));

  t.deepEqual(
    (await sandbox.charges('x')).map((c) => c.orderId),
    ['x'],
  );
  t.deepEqual(await sandbox.charges('nobody'), []);
  t.is((await sandbox.charges()).length, 2);
  const provider = (await (await fetch(`${sandbox.url}/charges?orderId=x`)).json()) as { items: unknown[] };
  t.deepEqual(provider.items, await sandbox.charges('x'), 'the provider route lists the same');
});

// --- settings -----------------------------------------------------------------------------------

test('when the failure rate is 1, then every provider call is a 500 and no charge is left behind', async (t) => {
  const sandbox = await startTestSandbox({ failureRate: 1 });
  t.teardown(() => sandbox.close());

  const answer = await post(sandbox, '/charges', 'f:charge', chargeBody('f'));
  const listing = await fetch(`${sandbox.url}/charges`);

  t.is(answer.status, 500);
  t.is(listing.status, 500);
  t.like(await sandbox.stats(), { calls: 2, failed: 2, charges: 0 });
  t.deepEqual(await sandbox.charges('f'), [], 'the control listing answers all the same');
});

test('when the failure rate is a fraction, then that share of calls fails (draws fixed by the test)', async (t) => {
  let n = 0;
  // Draws 0.0, 0.1, … 0.9, 0.0, …: with a rate of 0.3, three calls in ten fail.
  const sandbox = await startTestSandbox({ failureRate: 0.3 }, { random: () => (n++ % 10) / 10 });
  t.teardown(() => sandbox.close());

  const answers = [];
  for (let i = 0; i < 20; i += 1) answers.push(await post(sandbox, '/charges', `r${i}`, chargeBody(`r${i}`)));

  t.is(answers.filter((a) => a.status === 500).length, 6);
  t.is((await sandbox.stats()).charges, 14);
});

test('when the outage is 503, then provider calls are 503 while the control routes still answer', async (t) => {
  const sandbox = await startTestSandbox();
  t.teardown(() => sandbox.close());
  await sandbox.configure({ outage: '503' });

  const during = await post(sandbox, '/charges', 'o:charge', chargeBody('o'));
  const stats = await sandbox.stats();
  await sandbox.configure({ outage: 'none' });
  const after = await post(sandbox, '/charges', 'o:charge', chargeBody('o'));

  t.is(during.status, 503);
  t.like(stats, { unavailable: 1, charges: 0 });
  t.is(after.status, 201);
});

test('when the outage is reset, then the connection drops without an answer, and comes back when lifted', async (t) => {
  const sandbox = await startTestSandbox({ outage: 'reset' });
  t.teardown(() => sandbox.close());

  const error = await t.throwsAsync(post(sandbox, '/charges', 'z:charge', chargeBody('z')));
  await sandbox.configure({ outage: 'none' });
  const after = await post(sandbox, '/charges', 'z:charge', chargeBody('z'));

  t.is(error?.name, 'TypeError', 'fetch fails as for a refused connection');
  t.is(after.status, 201);
  t.like(await sandbox.stats(), { unavailable: 1, charges: 1 });
});

test('when the sandbox is slow, then the charge is made at once although its answer comes late', async (t) => {
  const sandbox = await startTestSandbox({ slowMs: 10_000 });
  t.teardown(() => sandbox.close());
  const caller = new AbortController();
  let answered = false;

  const call = fetch(`${sandbox.url}/charges`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': 's:charge' },
    body: JSON.stringify(chargeBody('s')),
    signal: caller.signal,
  }).then(
    () => {
      answered = true;
    },
    () => undefined,
  );
  const listed = await waitFor('the charge to be listed', async () => {
    const items = await sandbox.charges('s');
    return items.length > 0 ? items : undefined;
  });
  const answeredWhenListed = answered;
  caller.abort();
  await call;

  t.false(answeredWhenListed, 'the charge exists while its answer is still held back');
  t.is(listed.length, 1);
  t.is(listed[0].status, 'succeeded');
  t.like(await sandbox.stats(), { charges: 1 });
});

test('when latency is set, then provider calls take at least that long', async (t) => {
  const sandbox = await startTestSandbox({ latencyMs: 200 });
  t.teardown(() => sandbox.close());
  const started = performance.now();

  await post(sandbox, '/charges', 'l:charge', chargeBody('l'));

  t.true(performance.now() - started >= 190);
});

test('when settings are put, then they are validated, merged and reported; a bad one changes nothing', async (t) => {
  const sandbox = await startTestSandbox();
  t.teardown(() => sandbox.close());

  const merged = await sandbox.configure({ latencyMs: [10, 20], failureRate: 0.5 });
  const bad = await fetch(`${sandbox.url}/_settings`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ failureRate: 2, outage: 'sometimes' }),
  });
  const now = (await (await fetch(`${sandbox.url}/_settings`)).json()) as unknown;

  t.deepEqual(merged, { latencyMs: [10, 20], failureRate: 0.5, outage: 'none', slowMs: 0 });
  t.is(bad.status, 400);
  t.deepEqual(now, merged);
});

test('when settings come from the environment, then ranges and numbers are read and bad values rejected', (t) => {
  t.deepEqual(sandboxSettingsFromEnv({}), DEFAULT_SANDBOX_SETTINGS);
  t.deepEqual(
    sandboxSettingsFromEnv({
      PAYMENT_SANDBOX_LATENCY_MS: '20-200',
      PAYMENT_SANDBOX_FAILURE_RATE: '0.25',
      PAYMENT_SANDBOX_OUTAGE: '503',
      PAYMENT_SANDBOX_SLOW_MS: '',
    }),
    { latencyMs: [20, 200], failureRate: 0.25, outage: '503', slowMs: 0 },
  );
  t.is(sandboxSettingsFromEnv({ PAYMENT_SANDBOX_LATENCY_MS: '75' }).latencyMs, 75);
  const error = t.throws(
    () => sandboxSettingsFromEnv({ PAYMENT_SANDBOX_FAILURE_RATE: '-1', PAYMENT_SANDBOX_OUTAGE: 'down' }),
    { instanceOf: SandboxSettingsError },
  );
  t.is(error?.problems.length, 2);
  t.throws(() => applySettingsPatch(DEFAULT_SANDBOX_SETTINGS, { latencyMs: [50, 10] }), {
    instanceOf: SandboxSettingsError,
  });
});
