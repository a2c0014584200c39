import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { ConfigError, loadConfig, orderIdFromKey } from '#common';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { assertError, call, validOrder, type HttpResult, type OrderBody, type PageBody } from '../helpers/api-http.js';

/*
 * Authentication and client scoping against the real api in-process, with three clients whose keys
 * are made here: shop-a, shop-b and the admin ops. Every route, every way of getting the key wrong.
 */

const newKey = () => randomBytes(32).toString('base64url');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const KEYS = { shopA: newKey(), shopB: newKey(), ops: newKey() } as const;
const HASHES = Object.values(KEYS).map(sha256);
const API_KEYS = `shop-a:${sha256(KEYS.shopA)},shop-b:${sha256(KEYS.shopB)},ops:${sha256(KEYS.ops)}:admin`;
const BOARD = { user: 'operator', password: newKey() } as const;
const SECRETS = [...Object.values(KEYS), ...HASHES, BOARD.password];

let api: TestApi;
/** An order of shop-a's, made in `before`. */
let orderOfA: OrderBody;

test.before(async () => {
  api = await startTestApi('sec_auth', {
    API_KEYS,
    RATE_LIMIT_PER_MINUTE: '0',
    // These tests present hundreds of wrong credentials on purpose; brute-force.test.ts covers the limit.
    AUTH_FAILURE_LIMIT: '0',
    BULL_BOARD_USER: BOARD.user,
    BULL_BOARD_PASSWORD: BOARD.password,
  });
  const res = await call<OrderBody>(api, 'POST', '/orders', { json: validOrder(), headers: bearer(KEYS.shopA) });
  if (res.status !== 201) throw new Error(`setup: POST /orders answered ${res.status}: ${res.text}`);
  orderOfA = res.body;
});

test.after.always(async () => {
  await api?.close();
});

function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

/** One request; asserts no key, key hash or board password appears in the response, headers included. */
async function req<T = Record<string, unknown>>(
  t: ExecutionContext,
  method: string,
  path: string,
  options: { json?: unknown; headers?: Record<string, string> } = {},
): Promise<HttpResult<T>> {
  const res = await call<T>(api, method, path, options);
  const everything = `${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${res.text}`;
  for (const secret of SECRETS) {
    t.false(everything.includes(secret), `${method} ${path}: the response does not contain a key or its hash`);
  }
  return res;
}

function assertUnauthorized(t: ExecutionContext, res: HttpResult<unknown>, label: string, challenge = true): void {
  assertError(t, res, { status: 401, code: 'UNAUTHORIZED' }, label);
  if (challenge) t.is(res.headers.get('www-authenticate'), 'Bearer realm="orders"', `${label}: WWW-Authenticate`);
}

/** Every route of the api that needs a key, with a body where it takes one. */
function routes(): Array<{ method: string; path: string; json?: unknown }> {
  return [
    { method: 'POST', path: '/orders', json: validOrder() },
    { method: 'GET', path: '/orders' },
    { method: 'GET', path: `/orders/${orderOfA.id}` },
    { method: 'POST', path: `/orders/${orderOfA.id}/cancel` },
    { method: 'GET', path: '/dlq' },
    { method: 'POST', path: '/dlq/reprocess', json: {} },
    { method: 'POST', path: `/dlq/${orderOfA.id}/reprocess`, json: {} },
  ];
}

const WRONG_CREDENTIALS: Array<[string, (key: string) => Record<string, string>]> = [
  ['no Authorization header', () => ({})],
  ['an unknown key', () => bearer(newKey())],
  ['the sha256 of a valid key instead of the key', (key) => bearer(sha256(key))],
  ['a valid key with one character changed', (key) => bearer(`${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`)],
  ['a valid key with a suffix', (key) => bearer(`${key}x`)],
  [
    'Basic credentials with a valid key',
    (key) => ({ authorization: `Basic ${Buffer.from(`shop-a:${key}`).toString('base64')}` }),
  ],
  ['a valid key without a scheme', (key) => ({ authorization: key })],
  ['an empty Bearer', () => ({ authorization: 'Bearer ' })],
  ['a Bearer of 10 kB', () => bearer('k'.repeat(10_000))],
  ['the key in X-Api-Key', (key) => ({ 'x-api-key': key })],
];

for (const [label, headersFor] of WRONG_CREDENTIALS) {
  test.serial(
    `when a request carries ${label}, then every route answers 401 UNAUTHORIZED with a challenge`,
    async (t) => {
      const before = await api.container.models.Order.countDocuments();
      for (const route of routes()) {
        const res = await req(t, route.method, route.path, { json: route.json, headers: headersFor(KEYS.shopA) });
        assertUnauthorized(t, res, `${route.method} ${route.path}`);
      }
      t.is(await api.container.models.Order.countDocuments(), before, 'nothing stored');
      const order = await call<OrderBody>(api, 'GET', `/orders/${orderOfA.id}`, { headers: bearer(KEYS.shopA) });
      t.is(order.body.status, 'PENDING', 'the order was not cancelled');
    },
  );
}

test.serial(
  'when the key is valid, then the Bearer scheme name is matched case-insensitively (RFC 9110)',
  async (t) => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await req(t, 'GET', '/orders', { headers: { authorization: `${scheme} ${KEYS.shopA}` } });
      t.is(res.status, 200, scheme);
    }
  },
);

test.serial('when paths are spelled to slip past the open-path rule, then they still need a key', async (t) => {
  // Sent raw: fetch would normalise the dot segments away.
  const paths = [
    '/ORDERS',
    '/orders/',
    '/Orders?limit=1',
    '/metrics/../orders',
    '/openapi.json/../orders',
    '/admin/queues/../../orders',
    '/health/live/../../dlq',
    '/dlq/',
    '//orders',
  ];
  for (const path of paths) {
    const text = await new Promise<string>((resolve, reject) => {
      let out = '';
      const socket = net.connect(Number(new URL(api.baseUrl).port), '127.0.0.1', () =>
        socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
      );
      socket.on('data', (d) => (out += d.toString('latin1')));
      socket.on('close', () => resolve(out));
      socket.on('error', reject);
    });
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
    t.true([401, 404].includes(status), `${path} answered ${status}, not 401/404`);
    t.false(text.includes(orderOfA.id), `${path} leaks no order`);
  }
});

test.serial(
  'when another client reads, cancels or lists shop-a orders, then it sees nothing of them (404, own list)',
  async (t) => {
    const ofB = await req<OrderBody>(t, 'POST', '/orders', {
      json: validOrder({ customerId: 'c-b' }),
      headers: bearer(KEYS.shopB),
    });
    t.is(ofB.status, 201);

    for (const key of [KEYS.shopB, KEYS.ops]) {
      const who = key === KEYS.ops ? 'ops (admin)' : 'shop-b';
      assertError(
        t,
        await req(t, 'GET', `/orders/${orderOfA.id}`, { headers: bearer(key) }),
        { status: 404, code: 'NOT_FOUND' },
        `${who} reads`,
      );
      assertError(
        t,
        await req(t, 'POST', `/orders/${orderOfA.id}/cancel`, { headers: bearer(key) }),
        { status: 404, code: 'NOT_FOUND' },
        `${who} cancels`,
      );
    }
    const stillA = await req<OrderBody>(t, 'GET', `/orders/${orderOfA.id}`, { headers: bearer(KEYS.shopA) });
    t.is(stillA.status, 200, 'shop-a still reads its own order');
    t.is(stillA.body.status, 'PENDING', 'and it was not cancelled by shop-b');

    const listB = await req<PageBody>(t, 'GET', '/orders?limit=100', { headers: bearer(KEYS.shopB) });
    t.is(listB.status, 200);
    t.true(listB.body.items.length > 0, 'shop-b sees its own orders');
    t.false(
      listB.body.items.some((o) => o.id === orderOfA.id),
      'shop-b does not see shop-a order',
    );
    const byCustomer = await req<PageBody>(t, 'GET', `/orders?customerId=${orderOfA.customerId}`, {
      headers: bearer(KEYS.shopB),
    });
    t.false(
      byCustomer.body.items.some((o) => o.id === orderOfA.id),
      'not even filtered by shop-a customer id',
    );
    const listA = await req<PageBody>(t, 'GET', '/orders?limit=100', { headers: bearer(KEYS.shopA) });
    t.false(
      listA.body.items.some((o) => o.id === ofB.body.id),
      'shop-a does not see shop-b order',
    );

    const docs = await api.container.models.Order.collection
      .find({ _id: { $in: [orderOfA.id, ofB.body.id] } } as never)
      .toArray();
    const clientOf = Object.fromEntries(docs.map((d) => [String(d._id), d.clientId]));
    t.deepEqual(clientOf, { [orderOfA.id]: 'shop-a', [ofB.body.id]: 'shop-b' }, 'each stored order records its client');
  },
);

test.serial('when shop-a and shop-b use the same Idempotency-Key, then each gets its own order', async (t) => {
  const key = `same-key-${randomBytes(4).toString('hex')}`;
  const body = validOrder({ customerId: 'c-shared' });
  const a = await req<OrderBody>(t, 'POST', '/orders', {
    json: body,
    headers: { ...bearer(KEYS.shopA), 'idempotency-key': key },
  });
  const b = await req<OrderBody>(t, 'POST', '/orders', {
    json: body,
    headers: { ...bearer(KEYS.shopB), 'idempotency-key': key },
  });
  t.is(a.status, 201, a.text);
  t.is(b.status, 201, `shop-b is not a replay of shop-a: ${b.text}`);
  t.not(a.body.id, b.body.id);
  t.is(a.body.id, orderIdFromKey('shop-a', key), 'scope = client id');
  t.is(b.body.id, orderIdFromKey('shop-b', key));
  const replay = await req<OrderBody>(t, 'POST', '/orders', {
    json: body,
    headers: { ...bearer(KEYS.shopA), 'idempotency-key': key },
  });
  t.is(replay.status, 200, 'shop-a replays its own');
  t.is(replay.body.id, a.body.id);
  // A different body from shop-b under the key shop-a used: still shop-b's own key space.
  const otherBody = await req(t, 'POST', '/orders', {
    json: validOrder({ customerId: 'c-other' }),
    headers: { ...bearer(KEYS.shopB), 'idempotency-key': key },
  });
  assertError(t, otherBody, { status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
});

test.serial('when a non-admin key calls the dead-letter routes, then 401; the admin key gets 200/202', async (t) => {
  for (const key of [KEYS.shopA, KEYS.shopB]) {
    for (const route of routes().filter((r) => r.path.startsWith('/dlq'))) {
      const res = await req(t, route.method, route.path, { json: route.json, headers: bearer(key) });
      assertUnauthorized(t, res, `non-admin ${route.method} ${route.path}`, false);
    }
  }
  // A dead order to bring back: shop-a's order, moved to FAILED as the worker would after its last attempt.
  const dead = await call<OrderBody>(api, 'POST', '/orders', { json: validOrder(), headers: bearer(KEYS.shopA) });
  const at = new Date();
  await api.container.models.Order.collection.updateOne(
    { _id: dead.body.id } as never,
    {
      $set: { status: 'FAILED', failedAt: at, updatedAt: at },
      $push: { history: { status: 'FAILED', at } },
    } as never,
  );

  const list = await req<{ items: Array<{ order: OrderBody }> }>(t, 'GET', '/dlq', { headers: bearer(KEYS.ops) });
  t.is(list.status, 200, list.text);
  t.true(
    list.body.items.some((i) => i.order.id === dead.body.id),
    'the admin sees the dead order',
  );
  const one = await req<OrderBody>(t, 'POST', `/dlq/${dead.body.id}/reprocess`, {
    json: {},
    headers: bearer(KEYS.ops),
  });
  t.is(one.status, 202, one.text);
  const all = await req(t, 'POST', '/dlq/reprocess', { json: {}, headers: bearer(KEYS.ops) });
  t.is(all.status, 202, all.text);
  // The reprocess is recorded under the admin's client id.
  const doc = await api.container.models.Order.collection.findOne({ _id: dead.body.id } as never);
  t.true(JSON.stringify(doc?.history).includes('by ops'), 'history names the admin who reprocessed');
});

test.serial('when the open paths are called without a key, then they answer', async (t) => {
  const metrics = await req(t, 'GET', '/metrics');
  t.is(metrics.status, 200);
  const openapi = await req(t, 'GET', '/openapi.json');
  t.is(openapi.status, 200);
  // /health/live and /health/ready are served by terminus in api/main.ts, not by the app under test.
});

test.serial(
  'when the board is called without its credentials, then every page and action endpoint answers 401',
  async (t) => {
    const board = '/admin/queues';
    const queue = 'orders';
    const calls: Array<[string, string]> = [
      ['GET', board],
      ['GET', `${board}/api/queues`],
      ['GET', `${board}/api/redis/stats`],
      ['GET', `${board}/api/queues/${queue}/${orderOfA.id}`],
      ['PUT', `${board}/api/queues/${queue}/retry/failed`],
      ['PUT', `${board}/api/queues/${queue}/clean/completed`],
      ['PUT', `${board}/api/queues/${queue}/pause`],
      ['PUT', `${board}/api/queues/${queue}/empty`],
      ['PUT', `${board}/api/queues/${queue}/obliterate`],
      ['PUT', `${board}/api/queues/pause`],
      ['POST', `${board}/api/queues/${queue}/add`],
      ['PUT', `${board}/api/queues/${queue}/${orderOfA.id}/retry`],
      ['PUT', `${board}/api/queues/${queue}/${orderOfA.id}/clean`],
      ['PATCH', `${board}/api/queues/${queue}/${orderOfA.id}/update-data`],
    ];
    const wrong: Array<[string, Record<string, string>]> = [
      ['no credentials', {}],
      ['the admin API key', bearer(KEYS.ops)],
      ['a wrong password', { authorization: `Basic ${Buffer.from(`${BOARD.user}:${newKey()}`).toString('base64')}` }],
      [
        'the admin API key as password',
        { authorization: `Basic ${Buffer.from(`${BOARD.user}:${KEYS.ops}`).toString('base64')}` },
      ],
    ];
    for (const [label, headers] of wrong) {
      for (const [method, path] of calls) {
        const res = await req(t, method, path, { headers, ...(method === 'GET' ? {} : { json: {} }) });
        t.is(res.status, 401, `${label}: ${method} ${path}`);
        t.regex(res.headers.get('www-authenticate') ?? '', /^Basic /, `${label}: ${method} ${path} challenges`);
      }
    }
    const jobs = await api.container.queue.getJobCounts();
    t.true(Object.values(jobs).reduce((a, b) => a + b, 0) > 0, 'no action emptied the queue');
    t.false(await api.container.queue.isPaused(), 'no action paused the queue');
    const ok = await req(t, 'GET', `${board}/api/queues`, {
      headers: { authorization: `Basic ${Buffer.from(`${BOARD.user}:${BOARD.password}`).toString('base64')}` },
    });
    t.is(ok.status, 200, 'the right credentials open it');
  },
);

const MASS_ASSIGNED: Array<[string, unknown]> = [
  ['status', 'PROCESSED'],
  ['_id', 'ord_00000000000000000000000000000000'],
  ['id', 'ord_00000000000000000000000000000000'],
  ['attempts', 0],
  ['history', []],
  ['totalCents', 1],
  ['createdAt', '2020-01-01T00:00:00.000Z'],
  ['updatedAt', '2020-01-01T00:00:00.000Z'],
  ['processedAt', '2020-01-01T00:00:00.000Z'],
  ['failedAt', null],
  ['enqueuedAt', null],
  ['clientId', 'shop-b'],
  ['lastError', null],
  ['fingerprint', 'x'],
  ['correlationId', 'x'],
];

test.serial(
  'when a body sets server-owned fields (mass assignment), then 400 names each of them and nothing is stored',
  async (t) => {
    const before = await api.container.models.Order.countDocuments();
    for (const [field, value] of MASS_ASSIGNED) {
      const res = await req(t, 'POST', '/orders', {
        json: validOrder({ [field]: value }),
        headers: bearer(KEYS.shopA),
      });
      assertError(t, res, { status: 400, code: 'VALIDATION_ERROR', field }, field);
    }
    const all = await req(t, 'POST', '/orders', {
      json: validOrder(Object.fromEntries(MASS_ASSIGNED)),
      headers: bearer(KEYS.shopA),
    });
    assertError(t, all, { status: 400, code: 'VALIDATION_ERROR' });
    const named = (all.body as { error: { details: Array<{ field: string }> } }).error.details.map((d) => d.field);
    for (const [field] of MASS_ASSIGNED) t.true(named.includes(field), `all at once: details name ${field}`);
    // Server-owned fields inside an item are refused too.
    const inItem = await req(t, 'POST', '/orders', {
      json: validOrder({ items: [{ sku: 'S', quantity: 1, unitPriceCents: 1, totalCents: 0 }] }),
      headers: bearer(KEYS.shopA),
    });
    assertError(t, inItem, { status: 400, code: 'VALIDATION_ERROR', field: 'items.0.totalCents' });
    t.is(await api.container.models.Order.countDocuments(), before, 'nothing stored');
  },
);

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

test.serial('when NODE_ENV=production has no API_KEYS, then loadConfig throws ConfigError unless API_AUTH=off', (t) => {
  const error = t.throws(() => loadConfig({ NODE_ENV: 'production' }), { instanceOf: ConfigError });
  t.regex(error?.message ?? '', /API_KEYS is required in production/);
  t.throws(() => loadConfig({ NODE_ENV: 'production', API_AUTH: 'on' }), { instanceOf: ConfigError });
  const off = loadConfig({ NODE_ENV: 'production', API_AUTH: 'off' });
  t.false(off.apiAuth, 'API_AUTH=off is an explicit opt-out');
  const keyed = loadConfig({ NODE_ENV: 'production', API_KEYS });
  t.true(keyed.apiAuth);
  t.deepEqual(
    keyed.apiKeys.map((k) => [k.clientId, k.admin]),
    [
      ['shop-a', false],
      ['shop-b', false],
      ['ops', true],
    ],
  );
  t.true(loadConfig({ NODE_ENV: 'production', API_KEYS, API_AUTH: 'off' }).apiAuth === false, 'off wins over keys');
});

test.serial('when API_KEYS holds a raw key instead of its hash, then the ConfigError does not echo it', (t) => {
  const error = t.throws(() => loadConfig({ API_KEYS: `shop-a:${KEYS.shopA}` }), { instanceOf: ConfigError });
  t.regex(error?.message ?? '', /API_KEYS/);
  t.false((error?.message ?? '').includes(KEYS.shopA), 'the value is not in the message');
});
