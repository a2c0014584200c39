import test from 'ava';
import fc from 'fast-check';
import { isPlainValidOrder, newOrderSchema, validateNewOrder } from '../../api/http/order-schemas.js';

/**
 * POST /orders checks the common case without joi (`isPlainValidOrder`) and sends everything else to
 * joi. These properties hold the shortcut to the schema: it must never accept a body joi refuses or
 * would change, and it must take the ordinary valid bodies (or it saves nothing).
 */

const joiAccepts = (body: unknown) => newOrderSchema.validate(body, { convert: false, abortEarly: false });

// Values near each rule's edges, plus the wrong types JSON can carry.
const jsonScalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -5, max: 5 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 5 }),
);
const edgyString = fc.oneof(
  fc.constantFrom('', 'a', 'A', 'EUR', 'eur', 'EURO', 'c-42', 'SKU-1', 'x.y', '$x', 'a b', '__proto__', 'constructor'),
  fc.string({ maxLength: 70 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: fc.constantFrom('\ud800', '\udc00', 'a', '.', '$', '\u0000'), maxLength: 6 }),
  fc.stringMatching(/^[A-Za-z0-9_.-]{60,70}$/),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
);
const edgyNumber = fc.oneof(
  fc.constantFrom(-1, 0, -0, 1, 10_000, 10_001, 100_000_000, 100_000_001, 1.5, Number.MAX_SAFE_INTEGER + 2),
  fc.integer({ min: -10, max: 100_000_010 }),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1, max: 20_000 }),
);
const anyValue = fc.oneof(jsonScalar, edgyString, edgyNumber, fc.constant([]), fc.constant({}));

const item = fc.record(
  {
    sku: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/), edgyString, anyValue),
    quantity: fc.oneof(fc.integer({ min: 1, max: 10_000 }), edgyNumber, anyValue),
    unitPriceCents: fc.oneof(fc.integer({ min: 0, max: 100_000_000 }), edgyNumber, anyValue),
    extra: anyValue,
  },
  { requiredKeys: [], noNullPrototype: true },
);
const metadata = fc.oneof(
  fc.dictionary(fc.oneof(fc.stringMatching(/^[a-z_]{1,10}$/), edgyString), fc.oneof(edgyString, anyValue), {
    maxKeys: 22,
    noNullPrototype: true,
  }),
  anyValue,
);
const body = fc.oneof(
  fc.record(
    {
      customerId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), edgyString, anyValue),
      items: fc.oneof(
        fc.array(item, { minLength: 0, maxLength: 4 }),
        fc.array(item, { minLength: 99, maxLength: 102 }),
        anyValue,
      ),
      currency: fc.oneof(fc.stringMatching(/^[A-Z]{3}$/), edgyString, anyValue),
      metadata,
      extra: anyValue,
    },
    { requiredKeys: [], noNullPrototype: true },
  ),
  anyValue,
  fc.array(anyValue, { maxLength: 2 }),
);

// The ordinary valid order, in every shape docs/design.md allows.
const validItem = fc.record(
  {
    sku: fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/),
    quantity: fc.integer({ min: 1, max: 10_000 }),
    unitPriceCents: fc.integer({ min: 0, max: 100_000_000 }),
  },
  { noNullPrototype: true },
);
const validBody = fc.record(
  {
    customerId: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
    items: fc.array(validItem, { minLength: 1, maxLength: 100 }),
    currency: fc.stringMatching(/^[A-Z]{3}$/),
    metadata: fc.dictionary(
      fc.stringMatching(/^[a-z][a-z0-9_ -]{0,39}$/),
      fc.string({ maxLength: 256 }).filter((s) => !/[\ud800-\udfff]/.test(s)),
      { maxKeys: 20, noNullPrototype: true },
    ),
  },
  { requiredKeys: ['customerId', 'items', 'currency'], noNullPrototype: true },
);

// A valid order with one thing changed to an edge value: the bodies most likely to slip past a shortcut.
const WHERE = [
  'customerId',
  'currency',
  'items',
  'metadata',
  'extra',
  'sku',
  'quantity',
  'unitPriceCents',
  'itemExtra',
  'metaKey',
  'metaValue',
] as const;
const nearlyValid = fc
  .tuple(validBody, fc.constantFrom(...WHERE), fc.oneof(edgyString, edgyNumber, anyValue))
  .map(([valid, where, value]) => {
    const candidate: Record<string, unknown> = structuredClone(valid);
    const items = candidate.items as Record<string, unknown>[];
    const meta = (candidate.metadata ?? {}) as Record<string, unknown>;
    if (where === 'sku' || where === 'quantity' || where === 'unitPriceCents') items[0][where] = value;
    else if (where === 'itemExtra') items[0].extra = value;
    else if (where === 'metaKey') candidate.metadata = { ...meta, [String(value)]: 'v' };
    else if (where === 'metaValue') candidate.metadata = { ...meta, k: value };
    else candidate[where] = value;
    return candidate;
  });
const candidates = fc.oneof(validBody, nearlyValid, nearlyValid, body);

test('when the fast path accepts a body, then joi accepts it too and leaves it unchanged', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(candidates, (candidate) => {
      if (!isPlainValidOrder(candidate)) return true;
      accepted += 1;
      const result = joiAccepts(candidate);
      t.is(result.error, undefined, JSON.stringify(candidate));
      t.deepEqual(result.value, candidate);
      return result.error === undefined;
    }),
    { numRuns: 20_000 },
  );
  t.log(`${accepted} of 20000 generated bodies took the fast path`);
  t.true(accepted > 100, 'the generator reaches valid bodies, so the property is not vacuous');
});

test('when a body is an ordinary valid order, then the fast path takes it', (t) => {
  fc.assert(
    fc.property(validBody, (candidate) => {
      t.is(joiAccepts(candidate).error, undefined, 'the generator makes valid orders');
      return isPlainValidOrder(candidate);
    }),
    { numRuns: 2_000 },
  );
  t.pass();
});

test('when a body is not valid, then validateNewOrder reports joi’s details (the fast path never words errors)', (t) => {
  const error = t.throws(() => validateNewOrder({ customerId: 'c-1', items: [], currency: 'eur', extra: 1 }));
  const details = (error as unknown as { details: { field: string }[] }).details.map((d) => d.field).sort();
  t.deepEqual(details, ['currency', 'extra', 'items']);
});
