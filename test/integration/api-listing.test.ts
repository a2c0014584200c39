import test, { type ExecutionContext } from 'ava';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { assertError, call, postOrder, validOrder, type OrderBody, type PageBody } from '../helpers/api-http.js';

// Serial: the tests compare listings with the full set of stored orders, and one of them adds an order.
let api: TestApi;
/** Every order of the file's database, newest first as the API must list them (createdAt desc, id desc). */
let expected: Array<{ id: string; status: string; customerId: string; createdAt: number }>;

const CUSTOMERS = ['cust-a', 'cust-b'] as const;
const TOTAL = 45;

function newestFirst(a: { createdAt: number; id: string }, b: { createdAt: number; id: string }): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt;
  if (a.id === b.id) return 0;
  return a.id < b.id ? 1 : -1;
}

test.before(async () => {
  api = await startTestApi('api_listing');
  // Batches of concurrent requests: several orders share a createdAt millisecond, so the id tie-break counts.
  const created: OrderBody[] = [];
  for (let batch = 0; batch < TOTAL / 9; batch += 1) {
    const results = await Promise.all(
      Array.from({ length: 9 }, (_, i) => postOrder(api, validOrder({ customerId: CUSTOMERS[(batch + i) % 2] }))),
    );
    for (const r of results) {
      if (r.status !== 201) throw new Error(`setup: POST /orders answered ${r.status}: ${r.text}`);
      created.push(r.body);
    }
  }
  // Statuses the api cannot produce by itself, set directly (test setup). Every three orders also share
  // one createdAt, so page boundaries fall inside ties and the id tie-break is exercised for certain.
  const { Order } = api.container.models;
  for (const [i, order] of created.entries()) {
    const status = ['PENDING', 'PROCESSED', 'FAILED', 'PROCESSING', 'PENDING'][i % 5];
    const createdAt = new Date(created[i - (i % 3)]?.createdAt ?? order.createdAt);
    await Order.updateOne({ _id: order.id }, { $set: { status, createdAt } });
  }
  const docs = await Order.find({}, { _id: 1, status: 1, customerId: 1, createdAt: 1 }).lean();
  expected = docs
    .map((d) => ({ id: d._id, status: d.status, customerId: d.customerId, createdAt: d.createdAt.getTime() }))
    .sort(newestFirst);
  if (expected.length !== TOTAL) throw new Error(`setup: ${expected.length} orders stored, expected ${TOTAL}`);
  if (new Set(expected.map((o) => o.createdAt)).size > TOTAL / 3) throw new Error('setup: createdAt ties missing');
});

test.after.always(async () => {
  await api?.close();
});

/** Follows nextCursor from the first page until it is null; returns every page. */
async function allPages(t: ExecutionContext, query: string): Promise<PageBody[]> {
  const pages: PageBody[] = [];
  let cursor: string | null = null;
  do {
    const sep = query ? '&' : '';
    const path: string = `/orders?${query}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await call<PageBody>(api, 'GET', path);
    t.is(res.status, 200, `${path}: ${res.text.slice(0, 300)}`);
    if (res.status !== 200) break;
    pages.push(res.body);
    cursor = res.body.nextCursor;
    if (pages.length > TOTAL + 1) throw new Error('pagination does not end');
  } while (cursor !== null);
  return pages;
}

function assertListedOnce(t: ExecutionContext, pages: PageBody[], want: typeof expected, pageSize: number): void {
  const ids = pages.flatMap((p) => p.items.map((o) => o.id));
  t.is(new Set(ids).size, ids.length, 'no order listed twice');
  t.deepEqual(
    ids,
    want.map((o) => o.id),
    'every matching order exactly once, newest first (createdAt desc, id desc)',
  );
  for (const [i, page] of pages.entries()) {
    if (i < pages.length - 1) t.is(page.items.length, pageSize, `page ${i} is full`);
    else t.true(page.items.length <= pageSize && page.items.length > 0, 'the last page is not empty');
  }
}

test.serial(
  'when GET /orders?limit=7 is followed to the end, then every order comes exactly once, newest first',
  async (t) => {
    const pages = await allPages(t, 'limit=7');
    t.is(pages.length, Math.ceil(TOTAL / 7));
    assertListedOnce(t, pages, expected, 7);
    t.is(pages.at(-1)?.nextCursor, null);
  },
);

test.serial('when the last page is exactly full, then its nextCursor is null (no empty trailing page)', async (t) => {
  const pages = await allPages(t, 'limit=9');
  t.is(pages.length, TOTAL / 9);
  assertListedOnce(t, pages, expected, 9);
});

test.serial('when a limit covers every order, then one page holds them all and nextCursor is null', async (t) => {
  const res = await call<PageBody>(api, 'GET', '/orders?limit=100');
  t.is(res.status, 200);
  t.is(res.body.nextCursor, null);
  t.deepEqual(
    res.body.items.map((o) => o.id),
    expected.map((o) => o.id),
  );
});

test.serial('when no limit is given, then a page holds 20 orders', async (t) => {
  const res = await call<PageBody>(api, 'GET', '/orders');
  t.is(res.status, 200);
  t.is(res.body.items.length, 20);
  t.is(typeof res.body.nextCursor, 'string');
  t.deepEqual(
    res.body.items.map((o) => o.id),
    expected.slice(0, 20).map((o) => o.id),
  );
});

test.serial('when listed orders are compared with GET /orders/:id, then they have the same public shape', async (t) => {
  const res = await call<PageBody>(api, 'GET', '/orders?limit=3');
  for (const listed of res.body.items) {
    const read = await call<OrderBody>(api, 'GET', `/orders/${listed.id}`);
    t.deepEqual(listed, read.body);
  }
});

for (const status of ['PENDING', 'PROCESSED', 'FAILED', 'PROCESSING', 'CANCELLED']) {
  test.serial(`when filtered by status=${status}, then only those orders come, each exactly once`, async (t) => {
    const want = expected.filter((o) => o.status === status);
    const pages = await allPages(t, `status=${status}&limit=4`);
    assertListedOnce(t, want.length === 0 ? pages.filter((p) => p.items.length > 0) : pages, want, 4);
    t.true(pages.every((p) => p.items.every((o) => o.status === status)));
    if (want.length === 0) t.deepEqual(pages, [{ items: [], nextCursor: null }]);
  });
}

for (const customerId of CUSTOMERS) {
  test.serial(
    `when filtered by customerId=${customerId}, then only that customer's orders come, each exactly once`,
    async (t) => {
      const want = expected.filter((o) => o.customerId === customerId);
      t.true(want.length > 0);
      const pages = await allPages(t, `customerId=${customerId}&limit=7`);
      assertListedOnce(t, pages, want, 7);
    },
  );
}

test.serial(
  'when filtered by status and customerId together, then only orders matching both come, each exactly once',
  async (t) => {
    const want = expected.filter((o) => o.status === 'PENDING' && o.customerId === 'cust-b');
    t.true(want.length > 0);
    const pages = await allPages(t, 'status=PENDING&customerId=cust-b&limit=3');
    assertListedOnce(t, pages, want, 3);
  },
);

test.serial('when the customer has no orders, then the page is empty with a null cursor', async (t) => {
  const res = await call<PageBody>(api, 'GET', '/orders?customerId=nobody');
  t.is(res.status, 200);
  t.deepEqual(res.body, { items: [], nextCursor: null });
});

test.serial(
  'when an order is created after the first page was read, then following the cursor neither repeats nor skips older orders',
  async (t) => {
    const first = await call<PageBody>(api, 'GET', '/orders?limit=10&customerId=cust-a');
    t.is(first.status, 200);
    const extra = await postOrder(api, validOrder({ customerId: 'cust-late' }));
    t.is(extra.status, 201);
    const second = await call<PageBody>(
      api,
      'GET',
      `/orders?limit=10&customerId=cust-a&cursor=${encodeURIComponent(first.body.nextCursor ?? '')}`,
    );
    t.is(second.status, 200);
    const want = expected.filter((o) => o.customerId === 'cust-a').slice(10, 20);
    t.deepEqual(
      second.body.items.map((o) => o.id),
      want.map((o) => o.id),
    );
  },
);

const BAD_QUERIES: Array<[string, string]> = [
  ['status=BOGUS', 'status'],
  ['status=pending', 'status'],
  ['status=', 'status'],
  ['limit=0', 'limit'],
  ['limit=101', 'limit'],
  ['limit=abc', 'limit'],
  ['limit=1.5', 'limit'],
  ['limit=-1', 'limit'],
  ['limit=', 'limit'],
  ['limit=1&limit=2', 'limit'],
  ['cursor=garbage', 'cursor'],
  ['cursor=!!!', 'cursor'],
  ['cursor=', 'cursor'],
  [`cursor=${Buffer.from('[1,2]').toString('base64url')}`, 'cursor'],
  [`cursor=${Buffer.from(JSON.stringify([Date.now(), 'not-an-order'])).toString('base64url')}`, 'cursor'],
  [`cursor=${Buffer.from(JSON.stringify([1.5, `ord_${'0'.repeat(32)}`])).toString('base64url')}`, 'cursor'],
  [`cursor=${Buffer.from(JSON.stringify({ $gt: '' })).toString('base64url')}`, 'cursor'],
  // a safe integer, but beyond Date's range (±8.64e15 ms)
  [
    `cursor=${Buffer.from(JSON.stringify([Number.MAX_SAFE_INTEGER, `ord_${'0'.repeat(32)}`])).toString('base64url')}`,
    'cursor',
  ],
  [`cursor=${Buffer.from(JSON.stringify([-8.64e15 - 1, `ord_${'0'.repeat(32)}`])).toString('base64url')}`, 'cursor'],
  ['status[$ne]=x', 'status[$ne]'],
  ['status[$ne]=PENDING', 'status[$ne]'],
  ['status=PENDING&status=FAILED', 'status'],
  ['customerId=a%20b', 'customerId'],
  [`customerId=${'c'.repeat(65)}`, 'customerId'],
  ['customerId[$regex]=.*', 'customerId[$regex]'],
];

for (const [query, field] of BAD_QUERIES) {
  test.serial(
    `when GET /orders?${query.slice(0, 60)}, then it answers 400 VALIDATION_ERROR naming ${field}`,
    async (t) => {
      const res = await call(api, 'GET', `/orders?${query}`);
      assertError(t, res, { status: 400, code: 'VALIDATION_ERROR', field });
    },
  );
}
