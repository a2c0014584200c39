import test, { type ExecutionContext } from 'ava';
import { AppError, ORDER_STATUSES } from '#common';
import { listOrdersQuerySchema, newOrderSchema, validate } from '../../api/http/order-schemas.js';

type Body = Record<string, unknown>;

/** A body that satisfies every rule of docs/design.md "Input rules"; each test breaks one thing in a fresh copy. */
function validBody(): Body {
  return {
    customerId: 'c-42',
    items: [
      { sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 },
      { sku: 'sku_2.b', quantity: 1, unitPriceCents: 0 },
    ],
    currency: 'EUR',
    metadata: { channel: 'web', note: 'leave at the door' },
  };
}

function withItem(patch: Body): Body {
  const body = validBody();
  body.items = [{ sku: 'SKU-1', quantity: 2, unitPriceCents: 1250, ...patch }];
  return body;
}

function withMetadata(metadata: unknown): Body {
  return { ...validBody(), metadata };
}

/** Validates a POST /orders body, asserts a VALIDATION_ERROR and returns the error for inspection. */
function rejectBody(t: ExecutionContext, body: unknown): AppError {
  const error = t.throws(() => validate(newOrderSchema, body, { convert: false }), { instanceOf: AppError });
  t.is(error.code, 'VALIDATION_ERROR');
  t.true(error.details.length > 0, 'details name the offending fields');
  for (const detail of error.details) {
    t.is(typeof detail.field, 'string');
    t.is(typeof detail.message, 'string');
  }
  return error;
}

function rejectQuery(t: ExecutionContext, query: unknown): AppError {
  const error = t.throws(() => validate(listOrdersQuerySchema, query, { convert: true }), { instanceOf: AppError });
  t.is(error.code, 'VALIDATION_ERROR');
  return error;
}

function fieldsOf(error: AppError): string[] {
  return error.details.map((d) => d.field);
}

/** Asserts the body is rejected and one detail names exactly `field`. */
function assertRejectedAt(t: ExecutionContext, body: unknown, field: string): void {
  const error = rejectBody(t, body);
  t.true(fieldsOf(error).includes(field), `expected a detail for ${field}, got ${JSON.stringify(fieldsOf(error))}`);
}

// --- POST /orders: valid bodies ---------------------------------------------------------------

test('when the body follows every input rule, then validate returns it unchanged', (t) => {
  const body = validBody();

  const result = validate<Body>(newOrderSchema, body, { convert: false });

  t.deepEqual(result, validBody());
});

test('when metadata is omitted, then the body is valid and no metadata is added', (t) => {
  const { metadata: _metadata, ...body } = validBody();

  const result = validate<Body>(newOrderSchema, body, { convert: false });

  t.false('metadata' in result);
  t.is(result.customerId, 'c-42');
});

test('when every value sits exactly on its allowed bound, then the body is valid', (t) => {
  const body: Body = {
    customerId: 'A'.repeat(64),
    items: [
      { sku: 'S'.repeat(64), quantity: 1, unitPriceCents: 0 },
      { sku: 'a.b-c_d', quantity: 10000, unitPriceCents: 100_000_000 },
      ...Array.from({ length: 98 }, (_, i) => ({ sku: `SKU-${i}`, quantity: 1, unitPriceCents: 1 })),
    ],
    currency: 'JPY',
    metadata: {
      ['k'.repeat(40)]: 'v'.repeat(256),
      ...Object.fromEntries(Array.from({ length: 19 }, (_, i) => [`key-${i}`, 'value'])),
    },
  };
  t.is((body.items as unknown[]).length, 100);
  t.is(Object.keys(body.metadata as Body).length, 20);

  const result = validate<Body>(newOrderSchema, body, { convert: false });

  t.deepEqual(result, body);
});

test('when a metadata key holds a `$` that is not its first character, then it is allowed', (t) => {
  const result = validate<Body>(newOrderSchema, withMetadata({ price$: 'x' }), { convert: false });

  t.deepEqual(result.metadata, { price$: 'x' });
});

// --- POST /orders: the body itself -------------------------------------------------------------

test('when the body is not an object, then it is rejected with field "body"', (t) => {
  for (const body of [null, 'order', 42, [], [validBody()]]) {
    const error = rejectBody(t, body);
    t.deepEqual(fieldsOf(error), ['body'], JSON.stringify(body));
  }
});

test('when the body is empty, then every required field is reported at once', (t) => {
  const error = rejectBody(t, {});

  t.deepEqual(fieldsOf(error).sort(), ['currency', 'customerId', 'items']);
  for (const detail of error.details) t.regex(detail.message, /required/);
});

test('when each required field is missing on its own, then that field is reported', (t) => {
  for (const field of ['customerId', 'items', 'currency']) {
    const body = validBody();
    delete body[field];

    const error = rejectBody(t, body);

    t.deepEqual(fieldsOf(error), [field]);
  }
});

test('when an item misses a required field, then the item path is reported', (t) => {
  for (const field of ['sku', 'quantity', 'unitPriceCents']) {
    const item: Body = { sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 };
    delete item[field];

    const error = rejectBody(t, { ...validBody(), items: [item] });

    t.deepEqual(fieldsOf(error), [`items.0.${field}`]);
  }
});

// --- customerId ---------------------------------------------------------------------------------

test('when customerId is not a string, then it is rejected without conversion', (t) => {
  for (const customerId of [42, true, null, ['c-42'], { id: 'c-42' }]) {
    assertRejectedAt(t, { ...validBody(), customerId }, 'customerId');
  }
});

test('when customerId is empty or longer than 64 characters, then it is rejected', (t) => {
  assertRejectedAt(t, { ...validBody(), customerId: '' }, 'customerId');
  assertRejectedAt(t, { ...validBody(), customerId: 'c'.repeat(65) }, 'customerId');
});

test('when customerId holds a character outside [A-Za-z0-9_-], then it is rejected', (t) => {
  for (const customerId of ['c 42', 'c.42', 'c$42', 'c/42', 'ç42', 'c-42\n', '$where']) {
    assertRejectedAt(t, { ...validBody(), customerId }, 'customerId');
  }
});

// --- items --------------------------------------------------------------------------------------

test('when items is empty, then it is rejected', (t) => {
  const error = rejectBody(t, { ...validBody(), items: [] });

  t.deepEqual(fieldsOf(error), ['items']);
});

test('when items holds 101 entries, then it is rejected', (t) => {
  const items = Array.from({ length: 101 }, () => ({ sku: 'SKU-1', quantity: 1, unitPriceCents: 1 }));

  const error = rejectBody(t, { ...validBody(), items });

  t.deepEqual(fieldsOf(error), ['items']);
});

test('when items is not an array, then it is rejected', (t) => {
  for (const items of ['SKU-1', { 0: { sku: 'SKU-1', quantity: 1, unitPriceCents: 1 } }, 3]) {
    assertRejectedAt(t, { ...validBody(), items }, 'items');
  }
});

test('when an item is not an object, then its index is reported', (t) => {
  const body = validBody();
  body.items = [{ sku: 'SKU-1', quantity: 1, unitPriceCents: 1 }, null, 'SKU-2'];

  const error = rejectBody(t, body);

  t.deepEqual(fieldsOf(error).sort(), ['items.1', 'items.2']);
});

test('when sku is empty, too long, not a string or holds a bad character, then it is rejected', (t) => {
  for (const sku of ['', 'S'.repeat(65), 7, null, 'SKU 1', 'SKU/1', 'SKU$1']) {
    assertRejectedAt(t, withItem({ sku }), 'items.0.sku');
  }
});

test('when quantity is the string "2", then it is rejected (no conversion)', (t) => {
  const error = rejectBody(t, withItem({ quantity: '2' }));

  t.deepEqual(fieldsOf(error), ['items.0.quantity']);
  t.regex(error.details[0].message, /number/);
});

test('when quantity is not a positive integer up to 10000, then it is rejected', (t) => {
  for (const quantity of [0, -1, 10001, 1.5, 2.0000001, Infinity, NaN, true, null, [2]]) {
    assertRejectedAt(t, withItem({ quantity }), 'items.0.quantity');
  }
});

test('when unitPriceCents is outside 0–100000000 or not an integer, then it is rejected', (t) => {
  for (const unitPriceCents of [-1, 100_000_001, 12.5, '1250', null, false]) {
    assertRejectedAt(t, withItem({ unitPriceCents }), 'items.0.unitPriceCents');
  }
});

test('when the bad item is not the first, then the reported path carries its index', (t) => {
  const body = validBody();
  body.items = [
    { sku: 'SKU-1', quantity: 1, unitPriceCents: 1 },
    { sku: 'SKU-2', quantity: 1, unitPriceCents: 1 },
    { sku: 'SKU-3', quantity: 0, unitPriceCents: 1 },
  ];

  const error = rejectBody(t, body);

  t.deepEqual(fieldsOf(error), ['items.2.quantity']);
});

// --- currency -----------------------------------------------------------------------------------

test('when currency is not three upper-case letters, then it is rejected', (t) => {
  for (const currency of ['eur', 'EURO', 'EU', 'E1R', 'Eur', '', 978, null]) {
    assertRejectedAt(t, { ...validBody(), currency }, 'currency');
  }
});

// --- unknown fields and operator keys -----------------------------------------------------------

test('when the body has an unknown top-level field, then it is rejected, not stripped', (t) => {
  const error = rejectBody(t, { ...validBody(), totalCents: 1 });

  t.deepEqual(fieldsOf(error), ['totalCents']);
});

test('when an item has an unknown field, then it is rejected with the item path', (t) => {
  const error = rejectBody(t, withItem({ color: 'red' }));

  t.deepEqual(fieldsOf(error), ['items.0.color']);
});

test('when a `$where` key appears at the top, in an item or in metadata, then each is rejected', (t) => {
  assertRejectedAt(t, { ...validBody(), $where: 'sleep(1000)' }, '$where');
  assertRejectedAt(t, withItem({ $where: 'sleep(1000)' }), 'items.0.$where');
  assertRejectedAt(t, withMetadata({ $where: 'sleep(1000)' }), 'metadata.$where');
});

test('when an operator key like `$gt` or `$ne` appears anywhere, then it is rejected', (t) => {
  assertRejectedAt(t, { ...validBody(), $ne: null }, '$ne');
  assertRejectedAt(t, withItem({ $gt: 0 }), 'items.0.$gt');
  assertRejectedAt(t, withMetadata({ $set: 'x' }), 'metadata.$set');
});

test('when a key contains ".", then it is rejected at the top, in an item and in metadata', (t) => {
  assertRejectedAt(t, { ...validBody(), 'a.b': 'x' }, 'a.b');
  assertRejectedAt(t, withItem({ 'a.b': 'x' }), 'items.0.a.b');
  assertRejectedAt(t, withMetadata({ 'a.b': 'x' }), 'metadata.a.b');
  assertRejectedAt(t, withMetadata({ '.': 'x' }), 'metadata..');
});

// --- metadata -----------------------------------------------------------------------------------

test('when metadata has 21 keys, then it is rejected', (t) => {
  const metadata = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v']));

  const error = rejectBody(t, withMetadata(metadata));

  t.deepEqual(fieldsOf(error), ['metadata']);
});

test('when a metadata key is longer than 40 characters, then it is rejected', (t) => {
  const key = 'k'.repeat(41);

  const error = rejectBody(t, withMetadata({ [key]: 'v' }));

  t.deepEqual(fieldsOf(error), [`metadata.${key}`]);
});

test('when a metadata key is empty, then it is rejected', (t) => {
  const error = rejectBody(t, withMetadata({ '': 'v' }));

  t.is(error.details.length, 1);
  t.true(error.details[0].field.startsWith('metadata'));
});

test('when a metadata value is longer than 256 characters, then it is rejected', (t) => {
  const error = rejectBody(t, withMetadata({ note: 'v'.repeat(257) }));

  t.deepEqual(fieldsOf(error), ['metadata.note']);
});

test('when a metadata value is not a string, then it is rejected', (t) => {
  for (const value of [1, true, null, ['a'], 1.5]) {
    const error = rejectBody(t, withMetadata({ note: value }));
    t.deepEqual(fieldsOf(error), ['metadata.note'], JSON.stringify(value));
  }
});

test('when metadata nests an object, then it is rejected (metadata is flat)', (t) => {
  const error = rejectBody(t, withMetadata({ address: { city: 'Paris' } }));

  t.deepEqual(fieldsOf(error), ['metadata.address']);
});

test('when metadata itself is not an object, then it is rejected', (t) => {
  for (const metadata of ['web', 7, null, ['a', 'b']]) {
    assertRejectedAt(t, withMetadata(metadata), 'metadata');
  }
});

// --- many errors at once ------------------------------------------------------------------------

test('when several rules are broken at once, then every one is reported', (t) => {
  const body = {
    customerId: 'bad id!',
    items: [
      { sku: 'SKU-1', quantity: '2', unitPriceCents: -1 },
      { sku: 'SKU-2', quantity: 1, unitPriceCents: 1, $where: 'x' },
    ],
    currency: 'eur',
    metadata: { note: 5, 'a.b': 'x' },
    extra: true,
  };

  const error = rejectBody(t, body);

  t.deepEqual(
    fieldsOf(error).sort(),
    [
      'currency',
      'customerId',
      'extra',
      'items.0.quantity',
      'items.0.unitPriceCents',
      'items.1.$where',
      'metadata.a.b',
      'metadata.note',
    ].sort(),
  );
  t.is(error.message, 'the request is not valid');
});

// --- GET /orders query --------------------------------------------------------------------------

test('when the query is empty, then limit defaults to 20', (t) => {
  const result = validate<Body>(listOrdersQuerySchema, {}, { convert: true });

  t.deepEqual(result, { limit: 20 });
});

test('when limit is the string "5", then it is converted to the number 5', (t) => {
  const result = validate<Body>(listOrdersQuerySchema, { limit: '5' }, { convert: true });

  t.is(result.limit, 5);
});

test('when every query field is valid, then all are returned', (t) => {
  for (const status of ORDER_STATUSES) {
    const query = { status, customerId: 'c-42', limit: '100', cursor: 'WzE3MDAwMDAwMDAwMDBd' };

    const result = validate<Body>(listOrdersQuerySchema, query, { convert: true });

    t.deepEqual(result, { status, customerId: 'c-42', limit: 100, cursor: 'WzE3MDAwMDAwMDAwMDBd' });
  }
});

test('when status is not one of the order states, then it is rejected', (t) => {
  for (const status of ['NOPE', 'pending', '', 'PENDING ']) {
    const error = rejectQuery(t, { status });
    t.deepEqual([...new Set(fieldsOf(error))], ['status'], JSON.stringify(status));
  }
});

test('when limit is 0, 101, fractional or not a number, then it is rejected', (t) => {
  for (const limit of ['0', 0, '101', 101, 'abc', '1.5', '']) {
    const error = rejectQuery(t, { limit });
    t.deepEqual(fieldsOf(error), ['limit'], JSON.stringify(limit));
  }
});

test('when a query value is repeated (an array), then it is rejected', (t) => {
  for (const field of ['status', 'customerId', 'limit', 'cursor']) {
    const error = rejectQuery(t, { [field]: ['a', 'b'] });
    t.true(fieldsOf(error).length > 0);
    t.true(
      fieldsOf(error).every((f) => f === field),
      JSON.stringify(fieldsOf(error)),
    );
  }
});

test('when the query has an unknown key like `status[$ne]`, then it is rejected', (t) => {
  const error = rejectQuery(t, { 'status[$ne]': 'PROCESSED' });

  t.deepEqual(fieldsOf(error), ['status[$ne]']);
});

test('when customerId or cursor in the query has a bad character, then it is rejected', (t) => {
  t.deepEqual(fieldsOf(rejectQuery(t, { customerId: 'c 42' })), ['customerId']);
  t.deepEqual(fieldsOf(rejectQuery(t, { cursor: 'abc$def' })), ['cursor']);
  t.deepEqual(fieldsOf(rejectQuery(t, { cursor: 'a'.repeat(201) })), ['cursor']);
});

test('when the query breaks several rules, then all are reported', (t) => {
  const error = rejectQuery(t, { status: 'NOPE', limit: '0', extra: '1' });

  t.deepEqual(fieldsOf(error).sort(), ['extra', 'limit', 'status']);
});
