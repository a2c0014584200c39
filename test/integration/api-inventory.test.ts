import test from 'ava';
import { randomOrderId, registerInventoryModel } from '#common';
import { createWorkerInventoryRepository } from '../../worker/repositories/inventory-repository.js';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { assertError, call } from '../helpers/api-http.js';
import { apiKeysEnv } from '../helpers/dead-letters.js';

/**
 * `PUT /inventory/:sku` and `GET /inventory/:sku` (docs/design.md, "HTTP interface") over real HTTP, the
 * api built in-process with API keys configured, against the real MongoDB wire connection.
 */

interface StockBody {
  readonly sku: string;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
}

const keys = apiKeysEnv();
const admin = { authorization: `Bearer ${keys.opsKey}` };
let api: TestApi;
let skuCounter = 0;

test.before(async () => {
  api = await startTestApi('api_inventory', { API_KEYS: keys.API_KEYS });
});

test.after.always(async () => {
  await api?.close();
});

/** A SKU no other test uses. */
const freshSku = (label: string) => `${label}-${++skuCounter}`;

const put = (sku: string, json: unknown, headers: Record<string, string> = admin) =>
  call<StockBody>(api, 'PUT', `/inventory/${sku}`, { json, headers });
const get = (sku: string, headers: Record<string, string> = admin) =>
  call<StockBody>(api, 'GET', `/inventory/${sku}`, { headers });

test('when an admin sets the stock of a new SKU and reads it, then both answer its counts', async (t) => {
  const sku = freshSku('SKU.new_1');

  const created = await put(sku, { available: 50 });
  const read = await get(sku);
  const changed = await put(sku, { available: 7 });

  t.is(created.status, 200, created.text);
  t.deepEqual(created.body, { sku, available: 50, reserved: 0, sold: 0 });
  t.is(read.status, 200, read.text);
  t.deepEqual(read.body, { sku, available: 50, reserved: 0, sold: 0 });
  t.deepEqual(changed.body, { sku, available: 7, reserved: 0, sold: 0 });
  t.deepEqual((await get(sku)).body, changed.body);
});

test('when orders hold and buy stock, then GET shows it and PUT sets only what is available', async (t) => {
  const sku = freshSku('held');
  await put(sku, { available: 10 });
  const inventory = createWorkerInventoryRepository({ Inventory: registerInventoryModel(api.container.mongo) });
  const [held, bought] = [randomOrderId(), randomOrderId()];
  await inventory.reserve(held, [{ sku, quantity: 3 }]);
  await inventory.reserve(bought, [{ sku, quantity: 2 }]);
  await inventory.commit(bought, [{ sku, quantity: 2 }]);

  const before = await get(sku);
  const restocked = await put(sku, { available: 100 });

  t.deepEqual(before.body, { sku, available: 5, reserved: 3, sold: 2 });
  t.deepEqual(restocked.body, { sku, available: 100, reserved: 3, sold: 2 });
});

test('when a SKU has no inventory document, then GET answers 404', async (t) => {
  assertError(t, await get(freshSku('untracked')), { status: 404, code: 'NOT_FOUND' });
  // A sku outside the rule can never have been stocked: not found either.
  assertError(t, await get('a%20b'), { status: 404, code: 'NOT_FOUND' });
  assertError(t, await get('x'.repeat(65)), { status: 404, code: 'NOT_FOUND' });
});

test('when API keys are configured, then callers without an admin key get 401 and change nothing', async (t) => {
  const sku = freshSku('guarded');
  await put(sku, { available: 3 });

  for (const [who, headers] of [
    ['no key', {}],
    ['non-admin key', { authorization: `Bearer ${keys.shopKey}` }],
    ['unknown key', { authorization: 'Bearer not-a-configured-key' }],
  ] as const) {
    assertError(t, await put(sku, { available: 1000 }, headers), { status: 401, code: 'UNAUTHORIZED' }, `PUT, ${who}`);
    assertError(t, await get(sku, headers), { status: 401, code: 'UNAUTHORIZED' }, `GET, ${who}`);
    const untracked = freshSku('guarded-new');
    assertError(t, await put(untracked, { available: 1 }, headers), { status: 401, code: 'UNAUTHORIZED' }, who);
    t.is((await get(untracked)).status, 404, `${who}: no document was made`);
  }
  t.deepEqual((await get(sku)).body, { sku, available: 3, reserved: 0, sold: 0 });
});

test('when the body or the sku of a PUT is not valid, then it answers 400 naming the field and stores nothing', async (t) => {
  const sku = freshSku('invalid');
  const badBodies: [string, unknown][] = [
    ['no available', {}],
    ['negative', { available: -1 }],
    ['fraction', { available: 1.5 }],
    ['a string', { available: '5' }],
    ['null', { available: null }],
    ['over 1e9', { available: 1_000_000_001 }],
    ['an unknown field', { available: 5, reserved: 0 }],
    ['an array', [{ available: 5 }]],
  ];
  for (const [what, json] of badBodies) {
    const field = what === 'an unknown field' ? 'reserved' : what === 'an array' ? 'body' : 'available';
    assertError(t, await put(sku, json), { status: 400, code: 'VALIDATION_ERROR', field }, what);
  }
  for (const badSku of ['a%20b', 'x'.repeat(65), 'x%24y', '%C3%A9t%C3%A9', 'a%2Fb']) {
    assertError(
      t,
      await put(badSku, { available: 5 }),
      { status: 400, code: 'VALIDATION_ERROR', field: 'sku' },
      badSku,
    );
  }
  const notJson = await call(api, 'PUT', `/inventory/${sku}`, {
    body: '{"available": 5',
    headers: {
      ...admin,
      'content-type': 'application/json',
    },
  });
  assertError(t, notJson, { status: 400, code: 'INVALID_JSON' });
  const text = await call(api, 'PUT', `/inventory/${sku}`, { body: 'available=5', headers: admin });
  assertError(t, text, { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });

  assertError(t, await get(sku), { status: 404, code: 'NOT_FOUND' }, 'nothing stored');
});

test('when the stock is set to its bounds, then 0 and 1e9 are accepted', async (t) => {
  const sku = freshSku('bounds');

  t.deepEqual((await put(sku, { available: 1_000_000_000 })).body, {
    sku,
    available: 1_000_000_000,
    reserved: 0,
    sold: 0,
  });
  t.deepEqual((await put(sku, { available: 0 })).body, { sku, available: 0, reserved: 0, sold: 0 });
});

test('when many first PUTs of one SKU race, then all succeed and one document holds the last value written', async (t) => {
  const sku = freshSku('race');
  const values = Array.from({ length: 20 }, (_, i) => i + 1);

  const results = await Promise.all(values.map((available) => put(sku, { available })));

  t.true(
    results.every((r) => r.status === 200),
    results.map((r) => r.status).join(','),
  );
  const final = await get(sku);
  t.true(values.includes(final.body.available));
  t.like(final.body, { reserved: 0, sold: 0 });
  const Inventory = registerInventoryModel(api.container.mongo);
  t.is(await Inventory.countDocuments({ _id: sku }), 1);
});
