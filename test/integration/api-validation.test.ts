import test, { type ExecutionContext } from 'ava';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { assertError, call, postOrder, queueSnapshot, validOrder, type HttpResult } from '../helpers/api-http.js';

// A small body limit, still above a valid order with 101 items (~5 kB), so "too many items" is a 400.
const BODY_LIMIT = '16kb';

let api: TestApi;
let baseline: { orders: number; jobs: number; keys: string[] };

test.before(async () => {
  api = await startTestApi('api_validation', { BODY_LIMIT });
  // One accepted order first, so the queue's keys exist and "nothing written" compares real state.
  const seeded = await postOrder(api);
  if (seeded.status !== 201) throw new Error(`setup: POST /orders answered ${seeded.status}: ${seeded.text}`);
  baseline = await writes();
});

test.after.always(async () => {
  await api?.close();
});

async function writes() {
  return { orders: await api.container.models.Order.countDocuments(), ...(await queueSnapshot(api)) };
}

/** Nothing reached MongoDB or Redis: same order count, same job count, same keys under the prefix. */
async function assertNothingWritten(t: ExecutionContext, label: string) {
  const now = await writes();
  t.is(now.orders, baseline.orders, `${label}: Order.countDocuments() unchanged`);
  t.is(now.jobs, baseline.jobs, `${label}: no new job`);
  t.deepEqual(now.keys, baseline.keys, `${label}: Redis keys under the prefix unchanged`);
}

const item = (overrides: Record<string, unknown> = {}) => ({
  sku: 'SKU-1',
  quantity: 1,
  unitPriceCents: 100,
  ...overrides,
});
const without = (key: string) => {
  const body = validOrder();
  delete body[key];
  return body;
};
const metadataOf = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));

/** Each invalid body, the field its `details` must name, and why it is invalid (docs/design.md, "Orders"). */
const INVALID_BODIES: Array<[string, unknown, string | RegExp]> = [
  ['missing customerId', without('customerId'), 'customerId'],
  ['missing items', without('items'), 'items'],
  ['missing currency', without('currency'), 'currency'],
  ['empty object', {}, 'customerId'],
  ['customerId a number', validOrder({ customerId: 42 }), 'customerId'],
  ['customerId null', validOrder({ customerId: null }), 'customerId'],
  ['customerId empty', validOrder({ customerId: '' }), 'customerId'],
  ['customerId 65 chars', validOrder({ customerId: 'c'.repeat(65) }), 'customerId'],
  ['customerId with a space', validOrder({ customerId: 'c 42' }), 'customerId'],
  ['customerId with a dot', validOrder({ customerId: 'c.42' }), 'customerId'],
  ['customerId an operator object', validOrder({ customerId: { $ne: null } }), /^customerId/],
  ['items an object', validOrder({ items: { sku: 'SKU-1' } }), 'items'],
  ['items empty', validOrder({ items: [] }), 'items'],
  ['items 101 entries', validOrder({ items: Array.from({ length: 101 }, () => item()) }), 'items'],
  ['item null', validOrder({ items: [null] }), 'items.0'],
  ['item a string', validOrder({ items: ['SKU-1'] }), 'items.0'],
  ['item missing sku', validOrder({ items: [{ quantity: 1, unitPriceCents: 1 }] }), 'items.0.sku'],
  ['item missing quantity', validOrder({ items: [{ sku: 'S', unitPriceCents: 1 }] }), 'items.0.quantity'],
  ['item missing unitPriceCents', validOrder({ items: [{ sku: 'S', quantity: 1 }] }), 'items.0.unitPriceCents'],
  ['sku 65 chars', validOrder({ items: [item({ sku: 's'.repeat(65) })] }), 'items.0.sku'],
  ['sku with a slash', validOrder({ items: [item({ sku: 'a/b' })] }), 'items.0.sku'],
  ['sku a number', validOrder({ items: [item({ sku: 123 })] }), 'items.0.sku'],
  ['quantity the string "2"', validOrder({ items: [item({ quantity: '2' })] }), 'items.0.quantity'],
  ['quantity 0', validOrder({ items: [item({ quantity: 0 })] }), 'items.0.quantity'],
  ['quantity 10001', validOrder({ items: [item({ quantity: 10_001 })] }), 'items.0.quantity'],
  ['quantity 1.5', validOrder({ items: [item({ quantity: 1.5 })] }), 'items.0.quantity'],
  ['quantity true', validOrder({ items: [item({ quantity: true })] }), 'items.0.quantity'],
  [
    'quantity 1e400 (Infinity)',
    '{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1e400,"unitPriceCents":1}]}',
    'items.0.quantity',
  ],
  ['unitPriceCents negative', validOrder({ items: [item({ unitPriceCents: -1 })] }), 'items.0.unitPriceCents'],
  [
    'unitPriceCents 100000001',
    validOrder({ items: [item({ unitPriceCents: 100_000_001 })] }),
    'items.0.unitPriceCents',
  ],
  [
    'unitPriceCents the string "100"',
    validOrder({ items: [item({ unitPriceCents: '100' })] }),
    'items.0.unitPriceCents',
  ],
  ['unitPriceCents 9.99', validOrder({ items: [item({ unitPriceCents: 9.99 })] }), 'items.0.unitPriceCents'],
  ['second item wrong', validOrder({ items: [item(), item({ quantity: -5 })] }), 'items.1.quantity'],
  ['currency lower case', validOrder({ currency: 'eur' }), 'currency'],
  ['currency 4 letters', validOrder({ currency: 'EURO' }), 'currency'],
  ['currency a number', validOrder({ currency: 978 }), 'currency'],
  ['unknown top-level field', validOrder({ totalCents: 1 }), 'totalCents'],
  ['unknown top-level status', validOrder({ status: 'PROCESSED' }), 'status'],
  ['unknown item field', validOrder({ items: [item({ discount: 5 })] }), 'items.0.discount'],
  ['top-level $-key', validOrder({ $where: 'sleep(1000)' }), '$where'],
  ['top-level key with a dot', validOrder({ 'a.b': 'x' }), /a\.b/],
  ['item $-key', validOrder({ items: [item({ $inc: 1 })] }), /^items\.0\.\$inc$/],
  ['top-level constructor', validOrder({ constructor: { prototype: {} } }), 'constructor'],
  ['metadata $-key', validOrder({ metadata: { $gt: 'x' } }), /^metadata\.\$gt$/],
  ['metadata key with a dot', validOrder({ metadata: { 'a.b': 'x' } }), /^metadata/],
  ['metadata key 41 chars', validOrder({ metadata: { ['k'.repeat(41)]: 'x' } }), /^metadata/],
  ['metadata 21 keys', validOrder({ metadata: metadataOf(21) }), 'metadata'],
  ['metadata value a number', validOrder({ metadata: { a: 1 } }), 'metadata.a'],
  ['metadata value 257 chars', validOrder({ metadata: { a: 'v'.repeat(257) } }), 'metadata.a'],
  ['metadata value nested object', validOrder({ metadata: { a: { b: 'c' } } }), /^metadata\.a/],
  ['metadata value with an operator', validOrder({ metadata: { a: { $ne: 'c' } } }), /^metadata\.a/],
  ['metadata an array', validOrder({ metadata: ['a'] }), 'metadata'],
  ['metadata a string', validOrder({ metadata: 'a' }), 'metadata'],
  ['metadata null', validOrder({ metadata: null }), 'metadata'],
  ['body a JSON array', [validOrder()], /^(body|value)$/],
  ['priority unknown', validOrder({ priority: 'urgent' }), 'priority'],
  ['priority upper case', validOrder({ priority: 'EXPRESS' }), 'priority'],
  ['priority a number', validOrder({ priority: 1 }), 'priority'],
  ['priority null', validOrder({ priority: null }), 'priority'],
  ['notBefore not a date', validOrder({ notBefore: 'tomorrow' }), 'notBefore'],
  ['notBefore a number', validOrder({ notBefore: Date.now() + 60_000 }), 'notBefore'],
  [
    'notBefore 2 minutes in the past',
    validOrder({ notBefore: new Date(Date.now() - 120_000).toISOString() }),
    'notBefore',
  ],
  [
    'notBefore 31 days ahead',
    validOrder({ notBefore: new Date(Date.now() + 31 * 86_400_000).toISOString() }),
    'notBefore',
  ],
];

for (const [label, body, field] of INVALID_BODIES) {
  test.serial(
    `when the body has ${label}, then it answers 400 VALIDATION_ERROR naming the field and writes nothing`,
    async (t) => {
      const res = await call(api, 'POST', '/orders', {
        ...(typeof body === 'string' ? { body } : { json: body }),
        headers: { 'content-type': 'application/json' },
      });
      assertError(t, res, { status: 400, code: 'VALIDATION_ERROR', field });
      await assertNothingWritten(t, label);
    },
  );
}

// The JSON parser (co-body/bourne) refuses `__proto__` keys itself; the JSON is valid, the field is not
// allowed: 400 VALIDATION_ERROR naming it, like any other forbidden key (it was a 500 before aba2c88, then
// INVALID_JSON until issue 12).
const PROTO_BODIES: Array<[string, string, string]> = [
  [
    'top level',
    '__proto__',
    '{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1}],"__proto__":{"x":1}}',
  ],
  [
    'an item',
    'items.0.__proto__',
    '{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1,"__proto__":{"x":1}}]}',
  ],
  [
    'metadata',
    'metadata.__proto__',
    '{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1}],"metadata":{"__proto__":"x"}}',
  ],
];

for (const [where, field, raw] of PROTO_BODIES) {
  test.serial(
    `when the body has a __proto__ key in ${where}, then it answers 400 VALIDATION_ERROR naming ${field} and writes nothing`,
    async (t) => {
      const res = await call(api, 'POST', '/orders', { body: raw, headers: { 'content-type': 'application/json' } });
      assertError(t, res, { status: 400, code: 'VALIDATION_ERROR', field });
      await assertNothingWritten(t, `__proto__ in ${where}`);
    },
  );
}

test.serial('when several fields are wrong at once, then details name every one of them', async (t) => {
  const res = await postOrder(api, {
    customerId: 1,
    items: [{ sku: '', quantity: '1', unitPriceCents: -1 }],
    extra: 1,
  });
  assertError(t, res, { status: 400, code: 'VALIDATION_ERROR' });
  const fields = (res.body as unknown as { error: { details: Array<{ field: string }> } }).error.details.map(
    (d) => d.field,
  );
  for (const field of [
    'customerId',
    'items.0.sku',
    'items.0.quantity',
    'items.0.unitPriceCents',
    'currency',
    'extra',
  ]) {
    t.true(fields.includes(field), `${field} in ${JSON.stringify(fields)}`);
  }
  await assertNothingWritten(t, 'several fields');
});

const MALFORMED_JSON: Array<[string, string]> = [
  ['a truncated object', '{"customerId":'],
  ['single quotes', "{'customerId':'c-42'}"],
  ['a trailing comma', '{"customerId":"c-42",}'],
  ['plain text', 'hello'],
  ['a bare string (not an object)', '"c-42"'],
  ['a bare number (not an object)', '42'],
  ['null (not an object)', 'null'],
];

for (const [label, raw] of MALFORMED_JSON) {
  test.serial(`when the JSON body is ${label}, then it answers 400 INVALID_JSON and writes nothing`, async (t) => {
    const res = await call(api, 'POST', '/orders', { body: raw, headers: { 'content-type': 'application/json' } });
    assertError(t, res, { status: 400, code: 'INVALID_JSON', field: 'body' });
    await assertNothingWritten(t, label);
  });
}

test.serial('when the JSON body is empty, then it answers 400 and writes nothing', async (t) => {
  const res = await call(api, 'POST', '/orders', { body: '', headers: { 'content-type': 'application/json' } });
  t.is(res.status, 400, res.text);
  t.true(['INVALID_JSON', 'VALIDATION_ERROR'].includes((res.body as { error?: { code?: string } }).error?.code ?? ''));
  await assertNothingWritten(t, 'empty body');
});

const UNSUPPORTED_TYPES: Array<[string, Record<string, string>, string | Uint8Array]> = [
  ['text/plain', { 'content-type': 'text/plain' }, JSON.stringify(validOrder())],
  ['no content type', {}, new TextEncoder().encode(JSON.stringify(validOrder()))],
  ['form encoding', { 'content-type': 'application/x-www-form-urlencoded' }, 'customerId=c-42&currency=EUR'],
  ['multipart', { 'content-type': 'multipart/form-data; boundary=x' }, '--x--'],
  ['application/xml', { 'content-type': 'application/xml' }, '<order/>'],
];

for (const [label, headers, body] of UNSUPPORTED_TYPES) {
  test.serial(
    `when the body is sent with ${label}, then it answers 415 UNSUPPORTED_MEDIA_TYPE and writes nothing`,
    async (t) => {
      const res = await call(api, 'POST', '/orders', { body, headers });
      assertError(t, res, { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', field: 'Content-Type' });
      await assertNothingWritten(t, label);
    },
  );
}

test.serial('when the body has an unsupported Content-Encoding, then it answers 415 and writes nothing', async (t) => {
  const res = await call(api, 'POST', '/orders', {
    json: validOrder(),
    headers: { 'content-encoding': 'x-unknown' },
  });
  assertError(t, res, { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
  await assertNothingWritten(t, 'content-encoding');
});

async function postLarge(bytes: number, headers: Record<string, string> = {}): Promise<HttpResult<unknown>> {
  // Valid JSON whose only fault is its size.
  const padding = ' '.repeat(bytes);
  return call(api, 'POST', '/orders', {
    body: `${JSON.stringify(validOrder())}${padding}`,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

test.serial(
  'when the body is larger than BODY_LIMIT, then it answers 413 PAYLOAD_TOO_LARGE and writes nothing',
  async (t) => {
    const res = await postLarge(20 * 1024);
    assertError(t, res, { status: 413, code: 'PAYLOAD_TOO_LARGE', field: 'body' });
    await assertNothingWritten(t, '413');
  },
);

test.serial('when a huge body (1 MB) is sent, then it answers 413 and writes nothing', async (t) => {
  const res = await postLarge(1024 * 1024);
  assertError(t, res, { status: 413, code: 'PAYLOAD_TOO_LARGE' });
  await assertNothingWritten(t, '413 huge');
});

test.serial(
  'when an oversized body also carries an Idempotency-Key, then it answers 413 and writes nothing',
  async (t) => {
    const res = await postLarge(20 * 1024, { 'idempotency-key': 'big-one' });
    assertError(t, res, { status: 413, code: 'PAYLOAD_TOO_LARGE' });
    await assertNothingWritten(t, '413 with key');
  },
);

test.serial('when an invalid body carries an Idempotency-Key, then the key stays unused', async (t) => {
  const key = `unused-${Date.now()}`;
  const bad = await postOrder(api, validOrder({ currency: 'eur' }), { 'idempotency-key': key });
  assertError(t, bad, { status: 400, code: 'VALIDATION_ERROR', field: 'currency' });
  await assertNothingWritten(t, 'invalid with key');

  // The same key with a valid body is a first use: 201, not a replay and not 422.
  const good = await postOrder(api, validOrder(), { 'idempotency-key': key });
  t.is(good.status, 201, good.text);
  baseline = await writes();
});
