import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import Joi from 'joi';
import { ORDER_STATUSES } from '#common';
import { orderCursor } from '../../api/http/cursor.js';
import { listOrdersQuerySchema, newOrderSchema } from '../../api/http/order-schemas.js';
import { startTestApi, type TestApi } from '../helpers/api.js';
import type { ErrorBody, OrderBody, PageBody } from '../helpers/api-http.js';
import {
  allKeys,
  clientPart,
  deepNode,
  fromValue,
  hostileKey,
  hostileString,
  hostileTree,
  mutatedOrder,
  orderRuleViolations,
  render,
  stableJson,
  validOrder,
  type Json,
} from './hostile-input.js';

/*
 * Property-based hostile-input battery for POST /orders, GET /orders and the order paths, against
 * the real api in-process (own database and queue prefix, no rate limit). Requests are sequential.
 * Every property compares the api with an oracle written from docs/design.md (hostile-input.ts), so a
 * too-lenient schema is caught as well as a crash. FUZZ_SEED=<n> replays a run; FUZZ_SCALE=<k> runs k times as many.
 */

const BODY_LIMIT_BYTES = 100 * 1024; // the default BODY_LIMIT (100kb)
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
// FUZZ_SCALE=<k> multiplies the runs (a longer hunt than CI's bounded run).
const SCALE = Number(process.env.FUZZ_SCALE ?? 1) || 1;
const RUNS = Object.fromEntries(
  Object.entries({ hostile: 450, mutated: 500, valid: 200, query: 400, paths: 100 }).map(([k, n]) => [
    k,
    Math.ceil(n * SCALE),
  ]),
) as Record<'hostile' | 'mutated' | 'valid' | 'query' | 'paths', number>;

let api: TestApi;
/** Every order the api said it created (201), by id: what it answered, for comparison with MongoDB. */
const created = new Map<string, OrderBody>();
/** Idempotency keys used so far and the canonical body they were first used with. */
const keyBodies = new Map<string, string>();
let requests = 0;

test.before(async () => {
  api = await startTestApi('sec_fuzz', { RATE_LIMIT_PER_MINUTE: '0' });
});

test.after.always(async () => {
  await api?.close();
});

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: unknown;
}

async function send(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> {
  requests += 1;
  const response = await fetch(`${api.baseUrl}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

class PropertyFailure extends Error {
  override name = 'PropertyFailure';
}

function fail(reply: Reply, why: string): never {
  throw new PropertyFailure(`${why}\n  got ${reply.status}: ${reply.text.slice(0, 600)}`);
}

const CODES_BY_STATUS: Readonly<Record<number, readonly string[]>> = {
  400: ['VALIDATION_ERROR', 'INVALID_JSON'],
  404: ['NOT_FOUND'],
  413: ['PAYLOAD_TOO_LARGE'],
  415: ['UNSUPPORTED_MEDIA_TYPE'],
  422: ['IDEMPOTENCY_KEY_REUSED'],
};

// Stack frames, file paths, driver and runtime error names: none may reach a client. The generators
// never produce these words, so a hit is a leak, not an echo of the input.
const LEAK =
  /\n\s+at |\bat [^\s]+ \(|:\d+:\d+\)|node_modules|\/work\/|file:\/\/|(Type|Range|Reference|Syntax)Error|Mongo(Server|Network)?Error|BSON|E11000|ioredis|mongoose|Cannot read prop/;

/** A documented error: the status, one of its codes, the shape, the request id, no internals. */
function assertDocumentedError(reply: Reply, statuses: readonly number[]): void {
  if (!statuses.includes(reply.status)) fail(reply, `expected one of ${statuses.join('/')}`);
  const error = (reply.json as Partial<ErrorBody> | undefined)?.error;
  if (!error) fail(reply, 'error body missing');
  if (!CODES_BY_STATUS[reply.status]?.includes(error.code)) fail(reply, `code ${error.code} for ${reply.status}`);
  if (typeof error.message !== 'string') fail(reply, 'message is not a string');
  if (error.requestId !== reply.headers.get('x-request-id')) fail(reply, 'requestId differs from X-Request-Id');
  if (!Array.isArray(error.details)) fail(reply, 'details is not a list');
  for (const d of error.details) {
    if (typeof d?.field !== 'string' || typeof d?.message !== 'string') fail(reply, 'a detail lacks field/message');
  }
  if (LEAK.test(reply.text)) fail(reply, `internal text leaked: ${LEAK.exec(reply.text)?.[0]}`);
}

const isoDate = Joi.string().isoDate();
/** The order view of docs/design.md ("Orders") for a new order, strictly. */
const orderViewSchema = Joi.object({
  id: Joi.string()
    .pattern(/^ord_[0-9a-f]{32}$/)
    .required(),
  status: Joi.string().valid('PENDING').required(),
  customerId: Joi.string().required(),
  items: Joi.array().required(),
  totalCents: Joi.number().integer().min(0).max(Number.MAX_SAFE_INTEGER).required(),
  currency: Joi.string().required(),
  metadata: Joi.object(),
  // Priorities and schedules (issue 15): `standard` and no schedule unless asked.
  priority: Joi.string().valid('express', 'standard', 'bulk').required(),
  scheduledFor: Joi.alternatives(Joi.valid(null), isoDate).required(),
  attempts: Joi.number().valid(0).required(),
  lastError: Joi.valid(null).required(),
  history: Joi.array()
    .length(1)
    .items(Joi.object({ status: Joi.valid('PENDING').required(), at: isoDate.required() }))
    .required(),
  createdAt: isoDate.required(),
  updatedAt: isoDate.required(),
  processedAt: Joi.valid(null).required(),
  failedAt: Joi.valid(null).required(),
  // A new order has run no workflow step yet.
  steps: Joi.object().length(0).required(),
  rejectionReason: Joi.valid(null).required(),
});

/** A 201/200 carries an order view equal to what was sent, with the total computed by the server. */
function assertOrderReply(reply: Reply, sent: unknown): OrderBody {
  const order = reply.json as OrderBody;
  const { error } = orderViewSchema.validate(order, { convert: false, presence: 'optional' });
  if (error) fail(reply, `not an order view: ${error.message}`);
  const violations = orderRuleViolations(clientPart(order as never));
  if (violations.length > 0) fail(reply, `answered order breaks the rules: ${violations.join(', ')}`);
  if (stableJson(clientPart(order as never)) !== stableJson(clientPart(sent as Record<string, unknown>))) {
    fail(reply, 'answered order differs from the body sent');
  }
  const total = order.items.reduce((sum, i) => sum + i.quantity * i.unitPriceCents, 0);
  if (order.totalCents !== total) fail(reply, `totalCents ${order.totalCents} is not the sum ${total}`);
  return order;
}

/** The oracle's verdict for a body text: too large, not JSON / a `__proto__` key, invalid, or valid. */
function verdict(text: string): { kind: 'too-large' | 'invalid' | 'valid'; parsed?: unknown; why?: string } {
  if (Buffer.byteLength(text) > BODY_LIMIT_BYTES) return { kind: 'too-large' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'invalid', why: 'not JSON' };
  }
  const violations = orderRuleViolations(parsed);
  return violations.length > 0 ? { kind: 'invalid', parsed, why: violations.join(', ') } : { kind: 'valid', parsed };
}

/** POSTs a body and checks the reply against the oracle; records created orders. */
async function postAndCheck(text: string, idempotencyKey?: string): Promise<void> {
  const headers: Record<string, string> = idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey };
  const reply = await send('POST', '/orders', text, headers);
  // Recorded before any check, so one failure does not cascade into "stored but never answered".
  const id = (reply.json as { id?: unknown } | undefined)?.id;
  if (reply.status === 201 && typeof id === 'string') created.set(id, reply.json as OrderBody);
  if (reply.status >= 500) fail(reply, 'a 5xx');
  const expected = verdict(text);
  if (expected.kind === 'too-large') return assertDocumentedError(reply, [413]);
  if (expected.kind === 'invalid') {
    if (reply.status !== 400) fail(reply, `expected 400 (${expected.why})`);
    return assertDocumentedError(reply, [400]);
  }
  // The api fingerprints the body as sent: `"metadata": {}` and no metadata are different bodies.
  const canonical = stableJson(expected.parsed);
  const first = idempotencyKey === undefined ? undefined : keyBodies.get(idempotencyKey);
  if (first !== undefined && first !== canonical) return assertDocumentedError(reply, [422]);
  const status = first === undefined ? 201 : 200;
  if (reply.status === 201 && idempotencyKey !== undefined) keyBodies.set(idempotencyKey, canonical);
  if (reply.status !== status) fail(reply, `expected ${status} for a valid order`);
  const order = assertOrderReply(reply, expected.parsed);
  if (status === 201) {
    if (reply.headers.get('location') !== `/orders/${order.id}`) fail(reply, 'Location header');
  } else if (reply.headers.get('idempotent-replayed') !== 'true') fail(reply, 'Idempotent-Replayed header');
  return undefined;
}

async function assertAlive(t: ExecutionContext, label: string): Promise<void> {
  const reply = await send('GET', '/openapi.json');
  t.is(reply.status, 200, `${label}: the api still answers (GET /openapi.json)`);
}

function fcOptions<T>(numRuns: number): fc.Parameters<T> {
  return { numRuns, ...(SEED === undefined ? {} : { seed: SEED }), includeErrorInReport: true };
}

// ---------------------------------------------------------------------------------------------
// POST /orders
// ---------------------------------------------------------------------------------------------

/** Top-level bodies: any hostile JSON, or an object mixing real fields with hostile ones. */
const hostileBody: fc.Arbitrary<Json> = fc.oneof(
  hostileTree,
  deepNode,
  fc
    .array(
      fc.tuple(fc.oneof(fc.constantFrom('customerId', 'items', 'currency', 'metadata'), hostileKey), hostileTree),
      { maxLength: 6 },
    )
    .map((entries): Json => ({ kind: 'object', entries })),
);

test.serial(
  'when POST /orders gets thousands of hostile JSON bodies, then each is a documented 4xx or a valid order',
  async (t) => {
    t.timeout(150_000);
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(hostileBody, async (body) => postAndCheck(render(body))),
      fcOptions(RUNS.hostile),
    );
    await assertAlive(t, 'hostile bodies');
    t.log(`${RUNS.hostile} hostile bodies in ${Date.now() - started} ms`);
  },
);

test.serial(
  'when a valid order has one thing changed anywhere, then the api agrees with docs/design.md on it',
  async (t) => {
    t.timeout(150_000);
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(mutatedOrder, async ({ json }) => postAndCheck(render(json))),
      fcOptions(RUNS.mutated),
    );
    await assertAlive(t, 'mutated bodies');
    t.log(`${RUNS.mutated} mutated bodies in ${Date.now() - started} ms`);
  },
);

test.serial(
  'when valid orders with unicode metadata and idempotency keys arrive, then each is stored as sent',
  async (t) => {
    t.timeout(150_000);
    const started = Date.now();
    const key = fc.option(fc.oneof(fc.constantFrom('k-1', 'k-2', 'k-3'), fc.stringMatching(/^[\x21-\x7e]{1,255}$/)), {
      nil: undefined,
      freq: 2,
    });
    await fc.assert(
      fc.asyncProperty(validOrder, key, async (order, idempotencyKey) =>
        postAndCheck(render(fromValue(order)), idempotencyKey),
      ),
      fcOptions(RUNS.valid),
    );
    await assertAlive(t, 'valid bodies');
    t.log(`${RUNS.valid} valid bodies in ${Date.now() - started} ms; ${created.size} orders created so far`);
  },
);

/** Hand-picked bodies the generators reach only by luck. */
const CORNER_BODIES: Array<[string, string | Buffer]> = [
  ['1000 nested arrays', `${'['.repeat(1000)}${']'.repeat(1000)}`],
  ['1000 nested objects', `${'{"a":'.repeat(1000)}1${'}'.repeat(1000)}`],
  ['1000 nested __proto__ objects', `${'{"__proto__":'.repeat(1000)}{}${'}'.repeat(1000)}`],
  ['1000 nested constructor objects', `${'{"constructor":'.repeat(1000)}{"prototype":{}}${'}'.repeat(1000)}`],
  ['1000 nested $where objects', `${'{"$where":'.repeat(1000)}"sleep(100)"${'}'.repeat(1000)}`],
  ['40000 nested arrays (80 kB)', `${'['.repeat(40_000)}${']'.repeat(40_000)}`],
  ['20000 nested arrays with __proto__ at the bottom', `${'['.repeat(20_000)}{"__proto__":{}}${']'.repeat(20_000)}`],
  [
    'metadata value nested 1000 deep',
    `{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1}],"metadata":{"a":${'['.repeat(1000)}${']'.repeat(1000)}}}`,
  ],
  ['items nested 1000 deep', `{"customerId":"c","currency":"EUR","items":${'['.repeat(1000)}${']'.repeat(1000)}}`],
  [
    'escaped __proto__ key',
    '{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1}],"metadata":{"\\u005f\\u005fproto\\u005f\\u005f":"x"}}',
  ],
  [
    'constructor.prototype pollution',
    '{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1}],"constructor":{"prototype":{"isAdmin":true}}}',
  ],
  [
    'duplicate customerId, the last an operator',
    '{"customerId":"c","customerId":{"$ne":null},"currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1}]}',
  ],
  [
    'quantity 2**53+1',
    '{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":9007199254740993,"unitPriceCents":1}]}',
  ],
  [
    'unitPriceCents 1e308',
    '{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1e308}]}',
  ],
  ['unitPriceCents -0', '{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":-0}]}'],
  [
    'metadata key a lone surrogate',
    '{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1}],"metadata":{"\\ud800":"x","\\ud801":"y"}}',
  ],
  [
    'metadata value a lone surrogate',
    '{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1}],"metadata":{"a":"x\\udc00y"}}',
  ],
  [
    'metadata value with NUL, RTL override and an astral character',
    '{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1}],"metadata":{"\\u202ekey":"a\\u0000b\\u202ec\\ud83d\\ude00"}}',
  ],
  [
    'invalid UTF-8 bytes in customerId',
    Buffer.concat([
      Buffer.from('{"customerId":"c'),
      Buffer.from([0xc0, 0x80, 0xff, 0xfe]),
      Buffer.from('","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1}]}'),
    ]),
  ],
];

for (const [label, body] of CORNER_BODIES) {
  test.serial(`when the body is ${label}, then the answer is documented and never a 5xx`, async (t) => {
    if (typeof body === 'string') {
      await postAndCheck(body);
    } else {
      const reply = await send('POST', '/orders', body as unknown as string);
      // Invalid UTF-8 becomes U+FFFD when decoded, so customerId fails its pattern.
      assertDocumentedError(reply, [400]);
    }
    t.pass();
  });
}

// ---------------------------------------------------------------------------------------------
// GET /orders query parameters, and the order paths
// ---------------------------------------------------------------------------------------------

/** Percent-encodes the UTF-8 bytes of a string (a lone surrogate becomes EF BF BD, as in any UTF-8). */
function encode(s: string): string {
  return [...Buffer.from(s, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).padStart(2, '0').toUpperCase()}`,
    )
    .join('');
}

const validCursor = Buffer.from(JSON.stringify([Date.now(), `ord_${'a'.repeat(32)}`])).toString('base64url');
const paramName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('status', 'customerId', 'limit', 'cursor') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'status[$ne]',
      'cursor[$gt]',
      'status[]',
      'limit[0]',
      'customerId[$regex]',
      'status.$ne',
      '$where',
      '__proto__',
      'constructor',
      'prototype',
      'clientId',
    ),
  },
  { weight: 1, arbitrary: hostileKey },
);
const paramValue = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...ORDER_STATUSES, 'pending', 'x', '', 'c-42') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '0',
      '1',
      '20',
      '100',
      '101',
      '-1',
      '1e2',
      '1.5',
      '1.0',
      'NaN',
      'Infinity',
      '0x10',
      ' 5',
      '5 ',
      '9007199254740993',
      '1e308',
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      validCursor,
      Buffer.from('[1e400,"ord_x"]').toString('base64url'),
      Buffer.from('{"$gt":""}').toString('base64url'),
      Buffer.from(`[${Number.MAX_SAFE_INTEGER},"ord_${'0'.repeat(32)}"]`).toString('base64url'),
      `${'A'.repeat(200)}`,
      `${'A'.repeat(201)}`,
    ),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,200}$/) },
  {
    weight: 1,
    arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null').toString('base64url')),
  },
  { weight: 3, arbitrary: hostileString },
);
/** One query string: encoded pairs, or raw ASCII junk (`%zz`, `&&`, `=`) the parser has to cope with. */
const queryString = fc
  .array(
    fc.oneof(
      { weight: 5, arbitrary: fc.tuple(paramName, paramValue).map(([k, v]) => `${encode(k)}=${encode(v)}`) },
      { weight: 1, arbitrary: fc.tuple(paramName, paramValue).map(([k, v]) => `${encode(k)}[]=${encode(v)}`) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('%', '%zz', '%00', '%C0%80', 'status', '=', '&', 'limit=%2B5', 'limit=+5', 'a=b=c'),
      },
      { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 20 }).map((s) => s.replace(/#/g, '%23')) },
    ),
    { maxLength: 6 },
  )
  .map((pairs) => pairs.join('&'));

/** The query as Koa parses it (URLSearchParams; a repeated name becomes an array). */
function koaQuery(search: string): Record<string, string | string[]> {
  const params = new URLSearchParams(search);
  const out: Record<string, string | string[]> = Object.create(null);
  for (const key of params.keys()) {
    const all = params.getAll(key);
    out[key] = all.length <= 1 ? all[0] : all;
  }
  return { ...out };
}

/** 200 when docs/design.md's listing rules accept the parameters, else 400. */
function expectedListStatus(search: string): { status: 200 | 400; why: string } {
  const query = koaQuery(search);
  // joi drops an own `__proto__` key while cloning (it never becomes a prototype), so that one
  // parameter is ignored rather than refused; the final test checks nothing was polluted.
  delete query['__proto__'];
  const known = new Set(['status', 'customerId', 'limit', 'cursor']);
  const unknown = Object.keys(query).filter((k) => !known.has(k));
  if (unknown.length > 0) return { status: 400, why: `unknown parameter ${JSON.stringify(unknown)}` };
  const repeated = Object.keys(query).filter((k) => Array.isArray(query[k]));
  if (repeated.length > 0) return { status: 400, why: `repeated ${repeated.join(',')}` };
  if (query.status !== undefined && !(ORDER_STATUSES as readonly string[]).includes(query.status as string)) {
    return { status: 400, why: 'status' };
  }
  // The rest (limit's number syntax, cursor decoding) is the api's own parsing: use it as the oracle.
  const { error, value } = listOrdersQuerySchema.validate(query, { convert: true });
  if (error) return { status: 400, why: error.message };
  const limit = (value as { limit: number }).limit;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) return { status: 400, why: 'limit' };
  if (value.cursor) {
    try {
      orderCursor.decode(value.cursor as string);
    } catch {
      return { status: 400, why: 'cursor' };
    }
  }
  return { status: 200, why: 'valid' };
}

test.serial('when GET /orders gets hostile query parameters, then it answers 200 or 400, never a 5xx', async (t) => {
  t.timeout(120_000);
  const started = Date.now();
  let ok = 0;
  await fc.assert(
    fc.asyncProperty(queryString, async (qs) => {
      // What the server receives, after the client's own URL normalisation.
      const search = new URL(`${api.baseUrl}/orders?${qs}`).search.slice(1);
      const reply = await send('GET', `/orders?${search}`);
      if (reply.status >= 500) fail(reply, 'a 5xx');
      const expected = expectedListStatus(search);
      if (reply.status !== expected.status) fail(reply, `expected ${expected.status} for ?${search} (${expected.why})`);
      if (reply.status === 400) return assertDocumentedError(reply, [400]);
      const page = reply.json as PageBody;
      if (!Array.isArray(page?.items) || !(page.nextCursor === null || typeof page.nextCursor === 'string')) {
        fail(reply, 'not a page');
      }
      for (const order of page.items) {
        if (!created.has(order.id)) fail(reply, `listed ${order.id}, which no request created`);
      }
      ok += 1;
      return undefined;
    }),
    fcOptions(RUNS.query),
  );
  // A few must be hand-checked: operator injection through bracket syntax is a plain unknown parameter.
  for (const qs of ['status[$ne]=x', 'cursor[$gt]=', 'status=PENDING&status=FAILED', 'limit=101', 'limit=0']) {
    const reply = await send('GET', `/orders?${qs}`);
    assertDocumentedError(reply, [400]);
  }
  await assertAlive(t, 'query parameters');
  t.log(`${RUNS.query} queries in ${Date.now() - started} ms (${ok} answered 200)`);
  t.pass();
});

test.serial('when order paths carry hostile ids, then GET and cancel answer 404, never a 5xx', async (t) => {
  t.timeout(60_000);
  await fc.assert(
    // '.' and '..' are dot segments the client's URL parser resolves away: not ids.
    fc.asyncProperty(
      hostileString.filter((s) => s !== '' && s !== '.' && s !== '..'),
      fc.boolean(),
      async (id, cancel) => {
        const path = `/orders/${encode(id)}${cancel ? '/cancel' : ''}`;
        const reply = await send(cancel ? 'POST' : 'GET', path);
        if (reply.status >= 500) fail(reply, 'a 5xx');
        assertDocumentedError(reply, [404]);
      },
    ),
    fcOptions(RUNS.paths),
  );
  await assertAlive(t, 'order paths');
  t.pass();
});

// ---------------------------------------------------------------------------------------------
// What reached MongoDB
// ---------------------------------------------------------------------------------------------

test.serial('when the battery is over, then MongoDB holds exactly the orders answered 201, each valid', async (t) => {
  const docs = (await api.container.models.Order.collection.find({}).toArray()) as unknown as Array<
    Record<string, unknown>
  >;
  t.log(`${requests} requests sent; ${docs.length} orders stored`);
  t.true(created.size > 0, 'the battery created some orders (the valid property ran)');
  t.deepEqual(new Set(docs.map((d) => d._id as string)), new Set(created.keys()), 'stored ids = ids answered 201');
  for (const doc of docs) {
    const id = String(doc._id);
    const input = clientPart(doc);
    const joi = newOrderSchema.validate(input, { convert: false });
    t.is(joi.error, undefined, `${id}: the stored order passes the api's own schema`);
    t.deepEqual(orderRuleViolations(input), [], `${id}: the stored order keeps docs/design.md's rules`);
    const keys = allKeys(doc);
    t.deepEqual(
      keys.filter((k) => k.startsWith('$') || k.includes('.') || k === '__proto__'),
      [],
      `${id}: no $-key, dotted key or __proto__ key stored`,
    );
    const items = doc.items as Array<{ quantity: number; unitPriceCents: number }>;
    t.is(
      doc.totalCents,
      items.reduce((sum, i) => sum + i.quantity * i.unitPriceCents, 0),
      `${id}: totalCents is the sum`,
    );
    t.is(doc.clientId, 'public', `${id}: recorded client`);
    t.is(doc.status, 'PENDING', `${id}: status set by the server`);
    const answered = created.get(id);
    t.is(
      stableJson(input),
      stableJson(answered ? clientPart(answered as never) : undefined),
      `${id}: stored exactly what the api answered`,
    );
  }
  const probe: Record<string, unknown> = {};
  t.is(probe.isAdmin, undefined, 'Object.prototype was not polluted');
});
