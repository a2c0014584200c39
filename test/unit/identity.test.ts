import { createHash } from 'node:crypto';
import test from 'ava';
import {
  IDEMPOTENCY_KEY,
  PUBLIC_SCOPE,
  canonicalJson,
  fingerprint,
  isOrderId,
  orderIdFromKey,
  randomOrderId,
} from '#common';

/** docs/design.md's formula, computed here independently of the product code. */
function expectedOrderId(scope: string, key: string): string {
  return 'ord_' + createHash('sha256').update(`${scope}\n${key}`, 'utf8').digest('hex').slice(0, 32);
}

const ORDER_ID_FORMAT = /^ord_[0-9a-f]{32}$/;

// --- orderIdFromKey -----------------------------------------------------------------------------

test('when an id is derived from a key, then it is ord_ + the first 32 hex of sha256(scope\\nkey)', (t) => {
  for (const [scope, key] of [
    [PUBLIC_SCOPE, 'order-1'],
    ['client-a', 'order-1'],
    [PUBLIC_SCOPE, '~!@#$%^&*()_+{}|:"<>?'],
    [PUBLIC_SCOPE, 'k'.repeat(255)],
  ]) {
    t.is(orderIdFromKey(scope, key), expectedOrderId(scope, key), `${scope} / ${key}`);
  }
});

test('when a known key is hashed, then the id matches a fixed vector', (t) => {
  // printf 'public\nabc' | sha256sum → a304b87ba25c3529f6f741c0db9e2af0…; pins the formula against silent change.
  const id = orderIdFromKey(PUBLIC_SCOPE, 'abc');

  t.is(PUBLIC_SCOPE, 'public');
  t.is(id, 'ord_a304b87ba25c3529f6f741c0db9e2af0');
});

test('when the same scope and key are used twice, then the id is the same', (t) => {
  t.is(orderIdFromKey(PUBLIC_SCOPE, 'key-1'), orderIdFromKey(PUBLIC_SCOPE, 'key-1'));
});

test('when only the scope differs, then the ids differ', (t) => {
  t.not(orderIdFromKey('client-a', 'key-1'), orderIdFromKey('client-b', 'key-1'));
  t.not(orderIdFromKey(PUBLIC_SCOPE, 'key-1'), orderIdFromKey('client-a', 'key-1'));
});

test('when only the key differs, then the ids differ', (t) => {
  t.not(orderIdFromKey(PUBLIC_SCOPE, 'key-1'), orderIdFromKey(PUBLIC_SCOPE, 'key-2'));
  t.not(orderIdFromKey(PUBLIC_SCOPE, 'key'), orderIdFromKey(PUBLIC_SCOPE, 'Key'));
});

test('when scope and key would concatenate alike, then the newline separator keeps the ids apart', (t) => {
  // "ab" + "c" and "a" + "bc" must not collide.
  t.not(orderIdFromKey('ab', 'c'), orderIdFromKey('a', 'bc'));
});

test('when an id is derived from a key, then it is a valid order id', (t) => {
  const id = orderIdFromKey(PUBLIC_SCOPE, 'k');

  t.regex(id, ORDER_ID_FORMAT);
  t.true(isOrderId(id));
});

// --- randomOrderId ------------------------------------------------------------------------------

test('when a random id is made, then it is ord_ + 32 lower-case hex characters', (t) => {
  for (let i = 0; i < 100; i += 1) {
    const id = randomOrderId();
    t.regex(id, ORDER_ID_FORMAT);
    t.is(id.length, 36);
    t.true(isOrderId(id));
  }
});

test('when many random ids are made, then they are all different', (t) => {
  const ids = new Set(Array.from({ length: 10_000 }, () => randomOrderId()));

  t.is(ids.size, 10_000);
});

// --- isOrderId ----------------------------------------------------------------------------------

test('when a string is not ord_ + 32 lower-case hex, then isOrderId is false', (t) => {
  const hex = '0123456789abcdef0123456789abcdef';
  t.true(isOrderId(`ord_${hex}`));
  for (const value of [
    '',
    hex,
    `ord_${hex.slice(1)}`,
    `ord_${hex}0`,
    `ord_${hex.toUpperCase()}`,
    `ORD_${hex}`,
    `ord-${hex}`,
    `ord_${hex.slice(1)}g`,
    ` ord_${hex}`,
    `ord_${hex}\n`,
    `xord_${hex}`,
  ]) {
    t.false(isOrderId(value), JSON.stringify(value));
  }
});

// --- IDEMPOTENCY_KEY ----------------------------------------------------------------------------

test('when a key is 1 to 255 visible ASCII characters, then IDEMPOTENCY_KEY accepts it', (t) => {
  const allVisible = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).join('');
  for (const key of ['a', '0', '~', allVisible, 'x'.repeat(255), '550e8400-e29b-41d4-a716-446655440000']) {
    t.true(IDEMPOTENCY_KEY.test(key), JSON.stringify(key));
  }
});

test('when a key is empty, too long, holds a space, a control or a non-ASCII character, then it is rejected', (t) => {
  for (const key of [
    '',
    'x'.repeat(256),
    'a b',
    ' ',
    'a\tb',
    'key\n',
    '\x00',
    '\x7f',
    'clé',
    'ключ',
    'emoji-🙂',
    '\u00a0',
  ]) {
    t.false(IDEMPOTENCY_KEY.test(key), JSON.stringify(key));
  }
});

// --- canonicalJson and fingerprint --------------------------------------------------------------

test('when keys are out of order at every depth, then canonicalJson sorts them all', (t) => {
  const value = { b: 1, a: { d: [3, { z: 1, y: 2 }], c: null }, e: 'x' };

  t.is(canonicalJson(value), '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1,"e":"x"}');
});

test('when a value holds arrays, then canonicalJson keeps their order', (t) => {
  t.is(canonicalJson([3, 1, 2]), '[3,1,2]');
  t.is(canonicalJson({ items: ['b', 'a'] }), '{"items":["b","a"]}');
});

test('when a value is a scalar, then canonicalJson is its JSON', (t) => {
  for (const value of [null, true, false, 0, -1.5, 'text', 'quote"and\\slash', '']) {
    t.is(canonicalJson(value), JSON.stringify(value));
  }
});

test('when canonicalJson is parsed back, then it equals the original value', (t) => {
  const value = { customerId: 'c-42', items: [{ sku: 'S', quantity: 2, unitPriceCents: 1 }], metadata: { 'a"b': 'c' } };

  t.deepEqual(JSON.parse(canonicalJson(value)), value);
});

test('when two bodies differ only in key order, then their fingerprints are equal', (t) => {
  const a = {
    customerId: 'c-42',
    items: [{ sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 }],
    currency: 'EUR',
    metadata: { x: '1', y: '2' },
  };
  const b = {
    metadata: { y: '2', x: '1' },
    currency: 'EUR',
    items: [{ unitPriceCents: 1250, sku: 'SKU-1', quantity: 2 }],
    customerId: 'c-42',
  };

  t.is(fingerprint(a), fingerprint(b));
});

test('when a fingerprint is made, then it is the sha256 hex of the canonical JSON', (t) => {
  const body = { b: [1, 2], a: 'x' };

  const expected = createHash('sha256').update('{"a":"x","b":[1,2]}').digest('hex');

  t.is(fingerprint(body), expected);
  t.regex(fingerprint(body), /^[0-9a-f]{64}$/);
});

test('when two bodies differ in a value, then their fingerprints differ', (t) => {
  const base = { customerId: 'c-42', items: [{ sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 }], currency: 'EUR' };

  t.not(fingerprint(base), fingerprint({ ...base, currency: 'USD' }));
  t.not(fingerprint(base), fingerprint({ ...base, items: [{ sku: 'SKU-1', quantity: 3, unitPriceCents: 1250 }] }));
  t.not(fingerprint(base), fingerprint({ ...base, items: [{ sku: 'SKU-1', quantity: '2', unitPriceCents: 1250 }] }));
  t.not(fingerprint(base), fingerprint({ ...base, metadata: {} }));
});

test('when two bodies differ only in array order, then their fingerprints differ', (t) => {
  const first = { sku: 'A', quantity: 1, unitPriceCents: 1 };
  const second = { sku: 'B', quantity: 1, unitPriceCents: 1 };

  t.not(fingerprint({ items: [first, second] }), fingerprint({ items: [second, first] }));
});
