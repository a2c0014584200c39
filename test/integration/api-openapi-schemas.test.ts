import test, { type ExecutionContext } from 'ava';
import Ajv from 'ajv';
import fc from 'fast-check';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { call } from '../helpers/api-http.js';

/**
 * The OpenAPI request schemas are generated from the joi schemas the routers validate with
 * (api/http/joi-openapi.ts). This holds the document to the api: for generated bodies — arbitrary JSON,
 * and valid bodies with one or more things changed to edge values — the schema served at /openapi.json
 * accepts a body exactly when the real api, over HTTP, accepts it.
 *
 * The document says its lengths count UTF-16 code units and its patterns run without the `u` flag, as
 * joi does; ajv is set up to read it that way (`unicode: false`; ajv 6 compiles patterns without `u`).
 */

let api: TestApi;
let ajv: Ajv.Ajv;

test.before(async () => {
  api = await startTestApi('api_openapi_schemas');
  const res = await call(api, 'GET', '/openapi.json');
  if (res.status !== 200) throw new Error(`setup: GET /openapi.json answered ${res.status}`);
  ajv = new Ajv({ unicode: false, unknownFormats: 'ignore', validateSchema: false, allErrors: false });
  // OpenAPI's integer formats, which JSON Schema does not define.
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && Math.abs(n) < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addSchema(res.body, 'openapi');
});

test.after.always(async () => {
  await api?.close();
});

/** The document's verdict on `body` for the schema at `pointer` (e.g. `components/schemas/NewOrder`). */
function documentAccepts(pointer: string, body: unknown): boolean {
  const validate = ajv.getSchema(`openapi#/${pointer}`) ?? ajv.compile({ $ref: `openapi#/${pointer}` });
  return validate(body) === true;
}

// --- generators -------------------------------------------------------------------------------------

const jsonScalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -5, max: 5 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 5 }),
);
const edgyString = fc.oneof(
  fc.constantFrom('', 'a', 'EUR', 'eur', 'EURO', 'c-42', 'SKU-1', 'x.y', '$x', 'a b', 'a\u0001', '\u007f'),
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    '😀',
    '😀'.repeat(20),
    '😀'.repeat(21),
    'a\ud800',
    '\udc00b',
  ),
  fc.string({ maxLength: 70 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: fc.constantFrom('\ud800', '\udc00', '😀', 'a', '.', '$', '\u0000', '\n'), maxLength: 6 }),
  fc.stringMatching(/^[A-Za-z0-9_.-]{60,70}$/),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
  fc.string({ unit: fc.constantFrom('a', '😀'), minLength: 120, maxLength: 140 }),
  fc.string({ minLength: 195, maxLength: 205 }),
  fc.string({ minLength: 250, maxLength: 260 }),
);
const edgyNumber = fc.oneof(
  fc.constantFrom(-1, 0, 1, 10_000, 10_001, 100_000_000, 100_000_001, 1.5, 2 ** 53 + 2, 1e21),
  fc.integer({ min: -10, max: 100_000_010 }),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1, max: 20_000 }),
);
const anyValue = fc.oneof(jsonScalar, edgyString, edgyNumber, fc.constant([]), fc.constant({}));
const arbitraryJson = fc.oneof(fc.jsonValue({ maxDepth: 3 }), anyValue, fc.array(anyValue, { maxLength: 2 }));

const validItem = fc.record(
  {
    sku: fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/),
    quantity: fc.integer({ min: 1, max: 10_000 }),
    unitPriceCents: fc.integer({ min: 0, max: 100_000_000 }),
  },
  { noNullPrototype: true },
);
const validOrder = fc.record(
  {
    customerId: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
    items: fc.array(validItem, { minLength: 1, maxLength: 3 }),
    currency: fc.stringMatching(/^[A-Z]{3}$/),
    metadata: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_ -]{0,39}$/), fc.string({ maxLength: 40 }), {
      maxKeys: 20,
      noNullPrototype: true,
    }),
  },
  { requiredKeys: ['customerId', 'items', 'currency'], noNullPrototype: true },
);

/** One change to a valid order: a field set to an edge value, removed, or added. */
const orderChange = fc.tuple(
  fc.constantFrom(
    'customerId',
    'currency',
    'items',
    'metadata',
    'extra',
    'drop',
    'sku',
    'quantity',
    'unitPriceCents',
    'itemExtra',
    'itemDrop',
    'metaKey',
    'metaValue',
    'metaMany',
  ),
  fc.oneof(edgyString, edgyNumber, anyValue),
);
function applyChange(body: Record<string, unknown>, [where, value]: [string, unknown]): void {
  const items = Array.isArray(body.items) ? (body.items as Record<string, unknown>[]) : [];
  const first = items.find((i) => typeof i === 'object' && i !== null && !Array.isArray(i));
  const meta =
    typeof body.metadata === 'object' && body.metadata !== null ? (body.metadata as Record<string, unknown>) : {};
  if (where === 'sku' || where === 'quantity' || where === 'unitPriceCents') {
    if (first) first[where] = value;
  } else if (where === 'itemExtra') {
    if (first) first.extra = value;
  } else if (where === 'itemDrop') {
    if (first) delete first[String(value).length % 2 === 0 ? 'sku' : 'quantity'];
  } else if (where === 'drop') {
    delete body[['customerId', 'items', 'currency', 'metadata'][String(value).length % 4]];
  } else if (where === 'metaKey') {
    body.metadata = { ...meta, [String(value)]: 'v' };
  } else if (where === 'metaValue') {
    body.metadata = { ...meta, k: value };
  } else if (where === 'metaMany') {
    body.metadata = Object.fromEntries(Array.from({ length: 19 + (Number(value) & 3) }, (_, i) => [`k${i}`, 'v']));
  } else {
    body[where] = value;
  }
}
const changedOrder = fc
  .tuple(validOrder, fc.array(orderChange, { minLength: 1, maxLength: 3 }))
  .map(([valid, changes]) => {
    const body: Record<string, unknown> = structuredClone(valid);
    for (const change of changes) applyChange(body, change);
    return body;
  });

const orderId = fc.stringMatching(/^ord_[0-9a-f]{32}$/);
const reprocessBody = fc.oneof(
  fc.record({ orderIds: fc.array(orderId, { maxLength: 3 }), reason: edgyString }, { requiredKeys: [] }),
  fc.record(
    {
      orderIds: fc.oneof(
        fc.array(fc.oneof(orderId, edgyString, anyValue), { maxLength: 3 }),
        fc.constant(['ord_0123456789abcdef0123456789abcdef', 'ord_0123456789abcdef0123456789abcdef']),
        anyValue,
      ),
      reason: fc.oneof(edgyString, anyValue),
      extra: anyValue,
    },
    { requiredKeys: [] },
  ),
  arbitraryJson,
);

// --- the property -------------------------------------------------------------------------------------

/**
 * Sends each generated body (as the JSON the api receives) and compares the two verdicts. `acceptedBy`
 * maps the api's status to its verdict on the body; any status outside it fails the run.
 */
async function compare(
  t: ExecutionContext,
  options: {
    pointer: string;
    path: string;
    bodies: fc.Arbitrary<unknown>;
    numRuns: number;
    verdict: Readonly<Record<number, boolean>>;
  },
): Promise<void> {
  const tally = { accepted: 0, rejected: 0 };
  await fc.assert(
    fc.asyncProperty(options.bodies, async (generated) => {
      const wire = JSON.stringify(generated);
      if (wire === undefined) return true;
      const res = await call(api, 'POST', options.path, {
        body: wire,
        headers: { 'content-type': 'application/json' },
      });
      const apiAccepts = options.verdict[res.status];
      if (apiAccepts === undefined) throw new Error(`unexpected ${res.status} for ${wire}: ${res.text}`);
      const documented = documentAccepts(options.pointer, JSON.parse(wire));
      if (documented !== apiAccepts) {
        throw new Error(`document ${documented ? 'accepts' : 'rejects'}, api answers ${res.status}: ${wire}`);
      }
      tally[apiAccepts ? 'accepted' : 'rejected'] += 1;
      return true;
    }),
    { numRuns: options.numRuns },
  );
  t.log(`${options.path}: ${tally.accepted} accepted, ${tally.rejected} rejected by both`);
  t.true(tally.accepted >= options.numRuns / 10, 'the generator reaches accepted bodies');
  t.true(tally.rejected >= options.numRuns / 10, 'the generator reaches rejected bodies');
}

test.serial(
  'when generated bodies are posted to /orders, then the NewOrder schema and the api agree on each',
  async (t) => {
    t.timeout(180_000);
    await compare(t, {
      pointer: 'components/schemas/NewOrder',
      path: '/orders',
      bodies: fc.oneof(validOrder, changedOrder, changedOrder, changedOrder, arbitraryJson),
      numRuns: 600,
      verdict: { 201: true, 202: true, 400: false },
    });
  },
);

test.serial(
  'when generated bodies are posted to /dlq/reprocess, then the ReprocessMany schema and the api agree',
  async (t) => {
    t.timeout(120_000);
    await compare(t, {
      pointer: 'components/schemas/ReprocessMany',
      path: '/dlq/reprocess',
      bodies: reprocessBody,
      numRuns: 200,
      verdict: { 202: true, 400: false },
    });
  },
);

// The body is validated before the order is looked up, so a 404 for an unknown order means the body passed.
test.serial(
  'when generated bodies are posted to /dlq/:id/reprocess, then the ReprocessOne schema and the api agree',
  async (t) => {
    t.timeout(120_000);
    await compare(t, {
      pointer: 'components/schemas/ReprocessOne',
      path: '/dlq/ord_0123456789abcdef0123456789abcdef/reprocess',
      bodies: fc.oneof(fc.record({ reason: fc.oneof(edgyString, anyValue) }, { requiredKeys: [] }), reprocessBody),
      numRuns: 200,
      verdict: { 404: true, 400: false },
    });
  },
);

test('when the metadata rules of the api are read from the document, then control characters in keys are refused', (t) => {
  // The drift that made the schemas generated: the hand-written document allowed these keys.
  const order = { customerId: 'c-1', items: [{ sku: 'S', quantity: 1, unitPriceCents: 1 }], currency: 'EUR' };
  t.true(documentAccepts('components/schemas/NewOrder', { ...order, metadata: { note: 'x' } }));
  for (const key of ['a\u0001b', 'tab\t', '$where', 'a.b', '__proto__', 'x'.repeat(41), '\ud800']) {
    t.false(
      documentAccepts('components/schemas/NewOrder', { ...order, metadata: { [key]: 'x' } }),
      JSON.stringify(key),
    );
  }
});
