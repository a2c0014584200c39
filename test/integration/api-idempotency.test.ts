import { createHash, randomUUID } from 'node:crypto';
import test from 'ava';
import { startTestApi, type TestApi } from '../helpers/api.js';
import {
  assertError,
  call,
  enqueuedAtRecorded,
  jobsOfOrder,
  postOrder,
  queueSnapshot,
  validOrder,
} from '../helpers/api-http.js';

// Serial: several tests compare the whole queue and collection before and after, so no other test of
// this file may write in between.
let api: TestApi;

test.before(async () => {
  api = await startTestApi('api_idem');
});

test.after.always(async () => {
  await api?.close();
});

/** docs/design.md: `ord_` + the first 32 hex chars of sha256(scope + "\n" + key), scope `public`. */
function expectedId(key: string): string {
  return `ord_${createHash('sha256').update(`public\n${key}`).digest('hex').slice(0, 32)}`;
}

const newKey = () => `key-${randomUUID()}`;

async function totals() {
  return { orders: await api.container.models.Order.countDocuments(), ...(await queueSnapshot(api)) };
}

test.serial('when a key is sent, then the order id is derived from it as docs/design.md says', async (t) => {
  const key = newKey();
  const res = await postOrder(api, validOrder(), { 'idempotency-key': key });
  t.is(res.status, 201, res.text);
  t.is(res.body.id, expectedId(key));
  t.is(res.headers.get('location'), `/orders/${expectedId(key)}`);
});

test.serial(
  'when the same key and body are sent again, then it answers 200 Idempotent-Replayed with the same order and one job',
  async (t) => {
    const key = newKey();
    const first = await postOrder(api, validOrder(), { 'idempotency-key': key });
    t.is(first.status, 201, first.text);
    const before = await totals();

    const again = await postOrder(api, validOrder(), { 'idempotency-key': key });

    t.is(again.status, 200, again.text);
    t.is(again.headers.get('idempotent-replayed'), 'true');
    t.is(again.body.id, first.body.id);
    t.deepEqual(again.body, first.body);
    t.truthy(again.headers.get('x-request-id'));
    const after = await totals();
    t.is(after.orders, before.orders, 'no second order');
    t.is(after.jobs, before.jobs, 'no second job');
    t.is((await jobsOfOrder(api, first.body.id)).length, 1);
    t.truthy(await api.container.queue.getJob(first.body.id));
  },
);

test.serial(
  'when the replayed body has its keys in another order or other whitespace, then it counts as the same body',
  async (t) => {
    const key = newKey();
    const body = validOrder({ metadata: { a: '1', b: '2' } });
    const first = await postOrder(api, body, { 'idempotency-key': key });
    t.is(first.status, 201, first.text);
    const permuted =
      '{ "metadata": {"b":"2","a":"1"},\n  "currency":"EUR", "items": [' +
      '{"unitPriceCents":1250,"quantity":2,"sku":"SKU-1"},' +
      '{"quantity":3,"sku":"SKU-2.b","unitPriceCents":199}], "customerId":"c-42" }';
    const before = await totals();

    const again = await call(api, 'POST', '/orders', {
      body: permuted,
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
    });

    t.is(again.status, 200, again.text);
    t.is(again.headers.get('idempotent-replayed'), 'true');
    t.is((again.body as { id?: string }).id, first.body.id);
    t.deepEqual(await totals(), before);
  },
);

test.serial(
  'when the same key comes with a different body, then it answers 422 IDEMPOTENCY_KEY_REUSED and nothing changes',
  async (t) => {
    const key = newKey();
    const first = await postOrder(api, validOrder(), { 'idempotency-key': key });
    t.is(first.status, 201, first.text);
    const before = await totals();
    const variants = [
      validOrder({ currency: 'USD' }),
      validOrder({ customerId: 'c-43' }),
      validOrder({ metadata: { a: '1' } }),
      // item order is part of the request
      validOrder({ items: [...(validOrder().items as unknown[])].reverse() }),
      validOrder({ items: [{ sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 }] }),
    ];

    for (const body of variants) {
      const res = await postOrder(api, body, { 'idempotency-key': key });
      assertError(t, res, { status: 422, code: 'IDEMPOTENCY_KEY_REUSED', field: 'Idempotency-Key' });
      t.is(res.headers.get('idempotent-replayed'), null);
    }

    t.deepEqual(await totals(), before);
    const stored = await call(api, 'GET', `/orders/${first.body.id}`);
    t.deepEqual(stored.body, first.body, 'the stored order is untouched');
  },
);

test.serial('when two keys carry the same body, then they make two orders', async (t) => {
  const a = await postOrder(api, validOrder(), { 'idempotency-key': newKey() });
  const b = await postOrder(api, validOrder(), { 'idempotency-key': newKey() });
  t.is(a.status, 201);
  t.is(b.status, 201);
  t.not(a.body.id, b.body.id);
});

test.serial('when no key is sent, then each request makes a new order with a random id', async (t) => {
  const before = await totals();
  const a = await postOrder(api);
  const b = await postOrder(api);
  t.is(a.status, 201);
  t.is(b.status, 201);
  t.not(a.body.id, b.body.id);
  const after = await totals();
  t.is(after.orders, before.orders + 2);
  t.is(after.jobs, before.jobs + 2);
});

test.serial('when a 255-character visible-ASCII key is sent, then it is accepted', async (t) => {
  const key = `!~${'k'.repeat(253)}`;
  const res = await postOrder(api, validOrder(), { 'idempotency-key': key });
  t.is(res.status, 201, res.text);
  t.is(res.body.id, expectedId(key));
});

test.serial(
  'when the Idempotency-Key header is invalid, then it answers 400 naming Idempotency-Key and writes nothing',
  async (t) => {
    const before = await totals();
    // (Control characters such as DEL cannot be sent: fetch and Node's HTTP parser refuse them first.)
    const invalid: Array<[string, string]> = [
      ['256 characters', 'k'.repeat(256)],
      ['inner space', 'two words'],
      ['inner tab', 'two\twords'],
      ['empty', ''],
      ['non-ASCII', 'clé'],
    ];

    for (const [label, key] of invalid) {
      const res = await postOrder(api, validOrder(), { 'idempotency-key': key });
      assertError(t, res, { status: 400, code: 'VALIDATION_ERROR', field: 'Idempotency-Key' }, label);
    }

    t.deepEqual(await totals(), before);
  },
);

test.serial(
  'when 50 concurrent requests share one key, then exactly one order and one job exist and exactly one caller gets 201',
  async (t) => {
    const key = newKey();
    const before = await totals();

    const results = await Promise.all(
      Array.from({ length: 50 }, () => postOrder(api, validOrder(), { 'idempotency-key': key })),
    );

    const statuses = results.map((r) => r.status);
    t.true(
      statuses.every((s) => s === 201 || s === 200),
      JSON.stringify(statuses),
    );
    t.is(statuses.filter((s) => s === 201).length, 1, JSON.stringify(statuses));
    t.true(results.every((r) => r.body.id === expectedId(key)));
    t.true(results.filter((r) => r.status === 200).every((r) => r.headers.get('idempotent-replayed') === 'true'));
    t.is(await api.container.models.Order.countDocuments({ _id: expectedId(key) }), 1);
    const after = await totals();
    t.is(after.orders, before.orders + 1, 'exactly one order in MongoDB');
    t.is(after.jobs, before.jobs + 1, 'exactly one job in the queue');
    t.is((await jobsOfOrder(api, expectedId(key))).length, 1);
    await t.notThrowsAsync(enqueuedAtRecorded(api, expectedId(key)));
  },
);

test.serial(
  'when concurrent requests share one key with two different bodies, then one order exists and the losers get 200 or 422',
  async (t) => {
    const key = newKey();
    const bodyA = validOrder({ customerId: 'c-a' });
    const bodyB = validOrder({ customerId: 'c-b' });
    const before = await totals();

    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        postOrder(api, i % 2 === 0 ? bodyA : bodyB, { 'idempotency-key': key }).then((r) => ({
          r,
          body: i % 2 === 0 ? 'a' : 'b',
        })),
      ),
    );

    const winner = results.find(({ r }) => r.status === 201);
    t.truthy(winner, 'one request created the order');
    t.is(results.filter(({ r }) => r.status === 201).length, 1);
    for (const { r, body } of results) {
      if (r.status === 201) continue;
      if (body === winner?.body) t.is(r.status, 200, r.text);
      else assertError(t, r, { status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
    }
    const after = await totals();
    t.is(after.orders, before.orders + 1);
    t.is(after.jobs, before.jobs + 1);
  },
);

test.serial('when a replay finds its order stored but never queued, then the replay queues it', async (t) => {
  const key = newKey();
  const first = await postOrder(api, validOrder(), { 'idempotency-key': key });
  t.is(first.status, 201, first.text);
  await enqueuedAtRecorded(api, first.body.id); // the first request's own mark lands before the loss below
  // Simulate a first request that lost Redis after the insert: no job, enqueuedAt null.
  await api.container.queue.remove(first.body.id);
  await api.container.models.Order.updateOne({ _id: first.body.id }, { $set: { enqueuedAt: null } });
  t.is(await api.container.queue.getJob(first.body.id), undefined);

  const again = await postOrder(api, validOrder(), { 'idempotency-key': key });

  t.is(again.status, 200, again.text);
  const job = await api.container.queue.getJob(first.body.id);
  t.truthy(job, 'the replay added the missing job');
  t.is(job?.data.orderId, first.body.id);
  await t.notThrowsAsync(enqueuedAtRecorded(api, first.body.id));
});

test.serial(
  'when the order of a key was cancelled, then a replay answers 200 with the stored (cancelled) order',
  async (t) => {
    const key = newKey();
    const first = await postOrder(api, validOrder(), { 'idempotency-key': key });
    t.is(first.status, 201);
    const cancelled = await call(api, 'POST', `/orders/${first.body.id}/cancel`);
    t.is(cancelled.status, 200);

    const again = await postOrder(api, validOrder(), { 'idempotency-key': key });

    t.is(again.status, 200, again.text);
    t.is(again.body.status, 'CANCELLED');
    t.deepEqual(again.body, cancelled.body);
  },
);
