import test from 'ava';
import { fingerprint } from '#common';
import { startTestApi, type TestApi } from '../helpers/api.js';
import {
  VALID_ORDER_TOTAL_CENTS,
  assertError,
  call,
  enqueuedAtRecorded,
  jobsOfOrder,
  postOrder,
  validOrder,
  type OrderBody,
} from '../helpers/api-http.js';

const ORDER_ID = /^ord_[0-9a-f]{32}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let api: TestApi;

test.before(async () => {
  api = await startTestApi('api_orders');
});

test.after.always(async () => {
  await api?.close();
});

async function createOrder(body = validOrder(), headers: Record<string, string> = {}): Promise<OrderBody> {
  const created = await postOrder(api, body, headers);
  if (created.status !== 201) throw new Error(`setup: POST /orders answered ${created.status}: ${created.text}`);
  return created.body;
}

test('when a valid order is posted, then it answers 201 with Location, PENDING and a server-computed total', async (t) => {
  const res = await postOrder(api);

  t.is(res.status, 201, res.text);
  const order = res.body;
  t.regex(order.id, ORDER_ID);
  t.is(res.headers.get('location'), `/orders/${order.id}`);
  t.regex(res.headers.get('x-request-id') ?? '', UUID, 'a generated request id');
  t.is(res.headers.get('idempotent-replayed'), null);
  t.is(order.status, 'PENDING');
  t.is(order.totalCents, VALID_ORDER_TOTAL_CENTS);
  t.is(order.customerId, 'c-42');
  t.is(order.currency, 'EUR');
  t.deepEqual(order.items, validOrder().items);
  t.is(order.attempts, 0);
  t.is(order.lastError, null);
  t.is(order.processedAt, null);
  t.is(order.failedAt, null);
  t.is(order.history.length, 1);
  t.is(order.history[0]?.status, 'PENDING');
  t.is(order.history[0]?.at, order.createdAt);
  t.false(Number.isNaN(Date.parse(order.createdAt)));
  t.false(Number.isNaN(Date.parse(order.updatedAt)));
  t.false('metadata' in order, 'no metadata when none was sent');
  for (const internal of ['_id', 'fingerprint', 'clientId', 'correlationId', 'enqueuedAt']) {
    t.false(internal in order, `${internal} is not part of the public order`);
  }
});

test('when a valid order is posted, then its job (id = order id) is queued with the request id as correlationId', async (t) => {
  const res = await postOrder(api);
  t.is(res.status, 201, res.text);
  const requestId = res.headers.get('x-request-id');

  const job = await api.container.queue.getJob(res.body.id);

  t.truthy(job, 'a job with id = order id exists');
  t.is(job?.id, res.body.id);
  t.is(job?.name, 'process-order');
  // The customer rides along for the worker's fair share (README, "Fairness, priorities and schedules").
  t.deepEqual(job?.data, { orderId: res.body.id, correlationId: requestId, customerId: res.body.customerId });
  t.is(job?.opts.attempts, 5, 'JOB_ATTEMPTS default');
  t.is((await jobsOfOrder(api, res.body.id)).length, 1);
});

test('when a valid order is posted, then the stored document gets enqueuedAt and has the computed total', async (t) => {
  const res = await postOrder(api);
  t.is(res.status, 201, res.text);

  // enqueuedAt is written behind the reply, batched with other orders' (a few ms later).
  await t.notThrowsAsync(enqueuedAtRecorded(api, res.body.id));
  const doc = await api.container.models.Order.findById(res.body.id).lean();

  t.truthy(doc);
  t.is(doc?.totalCents, VALID_ORDER_TOTAL_CENTS);
  t.is(doc?.status, 'PENDING');
  t.is(doc?.clientId, 'public');
  t.is(doc?.correlationId, res.headers.get('x-request-id') ?? undefined);
  t.is(doc?.fingerprint, null, 'no Idempotency-Key, nothing to replay, no fingerprint');
});

test('when an order is posted with an Idempotency-Key, then the stored document keeps the sha256 of its canonical body', async (t) => {
  const body = validOrder();
  const res = await postOrder(api, body, { 'idempotency-key': `fp-${Date.now()}-${Math.random()}` });
  t.is(res.status, 201, res.text);

  const doc = await api.container.models.Order.findById(res.body.id).lean();

  t.is(doc?.fingerprint, fingerprint(body));
});

test('when a well-formed X-Request-Id is sent, then it is echoed and becomes the job correlationId', async (t) => {
  const requestId = 'req-orders.test:0001_AbC';

  const res = await postOrder(api, validOrder(), { 'x-request-id': requestId });

  t.is(res.status, 201, res.text);
  t.is(res.headers.get('x-request-id'), requestId);
  const job = await api.container.queue.getJob(res.body.id);
  t.is(job?.data.correlationId, requestId);
  const doc = await api.container.models.Order.findById(res.body.id).lean();
  t.is(doc?.correlationId, requestId);
});

test('when a malformed X-Request-Id is sent, then a generated id replaces it everywhere', async (t) => {
  for (const bad of ['has space', 'x'.repeat(129), 'semi;colon', '{"json":1}', 'é-latin1']) {
    const res = await postOrder(api, validOrder(), { 'x-request-id': bad });
    t.is(res.status, 201, res.text);
    const echoed = res.headers.get('x-request-id') ?? '';
    t.not(echoed, bad);
    t.regex(echoed, UUID, `replaced: ${bad.slice(0, 20)}`);
    const job = await api.container.queue.getJob(res.body.id);
    t.is(job?.data.correlationId, echoed);
  }
});

test('when the content type carries a charset, then the order is still accepted', async (t) => {
  const res = await postOrder(api, validOrder(), { 'content-type': 'application/json; charset=utf-8' });
  t.is(res.status, 201, res.text);
});

test('when metadata is sent, then it is stored and returned as sent', async (t) => {
  const metadata = { channel: 'web', 'note key': 'x'.repeat(256), ['k'.repeat(40)]: 'v' };

  const res = await postOrder(api, validOrder({ metadata }));

  t.is(res.status, 201, res.text);
  t.deepEqual(res.body.metadata, metadata);
  const read = await call<OrderBody>(api, 'GET', `/orders/${res.body.id}`);
  t.deepEqual(read.body.metadata, metadata);
});

// BUG (documented, not fixed here): docs/design.md allows metadata values that are "strings ≤ 256 chars" and the
// api's own OpenAPI schema has no minLength, but api/http/order-schemas.ts uses Joi.string(), which refuses
// "" ("is not allowed to be empty"). Remove `.failing` once the schema allows empty values (or the contract
// says otherwise and this test goes).
test('when a metadata value is the empty string, then it is accepted as a string of ≤ 256 chars', async (t) => {
  const res = await postOrder(api, validOrder({ metadata: { note: '' } }));
  t.is(res.status, 201, res.text);
  t.deepEqual(res.body.metadata, { note: '' });
});

test('when every limit is at its maximum, then the total is exact (100 × 10000 × 100000000)', async (t) => {
  const items = Array.from({ length: 100 }, (_, i) => ({
    sku: `S${i}`.padEnd(64, 'x'),
    quantity: 10_000,
    unitPriceCents: 100_000_000,
  }));

  const res = await postOrder(api, validOrder({ customerId: 'c'.repeat(64), items }));

  t.is(res.status, 201, res.text);
  t.is(res.body.totalCents, 100 * 10_000 * 100_000_000);
  t.is(res.body.items.length, 100);
});

test('when an item is free (unitPriceCents 0), then it is accepted and adds nothing', async (t) => {
  const res = await postOrder(api, validOrder({ items: [{ sku: 'FREE', quantity: 1, unitPriceCents: 0 }] }));
  t.is(res.status, 201, res.text);
  t.is(res.body.totalCents, 0);
});

test('when an existing order is read, then GET /orders/:id answers 200 with the order as created', async (t) => {
  const created = await createOrder();

  const res = await call<OrderBody>(api, 'GET', `/orders/${created.id}`);

  t.is(res.status, 200);
  t.deepEqual(res.body, created);
  t.truthy(res.headers.get('x-request-id'));
  t.is(res.headers.get('cache-control'), 'no-store');
});

test('when an unknown well-formed id is read, then it answers 404 NOT_FOUND', async (t) => {
  const res = await call(api, 'GET', `/orders/ord_${'0'.repeat(32)}`);
  assertError(t, res, { status: 404, code: 'NOT_FOUND' });
});

test('when a malformed id is read, then it answers 404 NOT_FOUND', async (t) => {
  for (const id of ['nope', `ord_${'A'.repeat(32)}`, `ord_${'0'.repeat(31)}`, '%24where', 'ord_%00']) {
    const res = await call(api, 'GET', `/orders/${id}`);
    assertError(t, res, { status: 404, code: 'NOT_FOUND' }, id);
  }
});

test('when a PENDING order is cancelled, then it answers 200 CANCELLED with the move in its history', async (t) => {
  const created = await createOrder();

  const res = await call<OrderBody>(api, 'POST', `/orders/${created.id}/cancel`);

  t.is(res.status, 200, res.text);
  t.is(res.body.id, created.id);
  t.is(res.body.status, 'CANCELLED');
  t.deepEqual(
    res.body.history.map((h) => h.status),
    ['PENDING', 'CANCELLED'],
  );
  t.is(typeof res.body.history[1]?.at, 'string');
  t.true(Date.parse(res.body.updatedAt) >= Date.parse(created.updatedAt));
  const read = await call<OrderBody>(api, 'GET', `/orders/${created.id}`);
  t.is(read.body.status, 'CANCELLED');
  t.deepEqual(read.body, res.body);
});

test('when a cancelled order is cancelled again, then it answers 409 INVALID_STATE and nothing changes', async (t) => {
  const created = await createOrder();
  const first = await call<OrderBody>(api, 'POST', `/orders/${created.id}/cancel`);
  t.is(first.status, 200);

  const again = await call(api, 'POST', `/orders/${created.id}/cancel`);

  assertError(t, again, { status: 409, code: 'INVALID_STATE' });
  const read = await call<OrderBody>(api, 'GET', `/orders/${created.id}`);
  t.deepEqual(read.body, first.body);
});

test('when an unknown or malformed order is cancelled, then it answers 404 NOT_FOUND', async (t) => {
  assertError(t, await call(api, 'POST', `/orders/ord_${'f'.repeat(32)}/cancel`), { status: 404, code: 'NOT_FOUND' });
  assertError(t, await call(api, 'POST', '/orders/not-an-id/cancel'), { status: 404, code: 'NOT_FOUND' });
  t.is(await api.container.models.Order.countDocuments({ _id: `ord_${'f'.repeat(32)}` }), 0);
});

test('when a FAILED order is cancelled, then it answers 200 CANCELLED', async (t) => {
  const created = await createOrder();
  await api.container.models.Order.updateOne({ _id: created.id }, { $set: { status: 'FAILED', failedAt: new Date() } });

  const res = await call<OrderBody>(api, 'POST', `/orders/${created.id}/cancel`);

  t.is(res.status, 200, res.text);
  t.is(res.body.status, 'CANCELLED');
  t.is(res.body.history.at(-1)?.status, 'CANCELLED');
});

test('when a PROCESSED or PROCESSING order is cancelled, then it answers 409 INVALID_STATE and keeps its state', async (t) => {
  for (const status of ['PROCESSED', 'PROCESSING'] as const) {
    const created = await createOrder();
    await api.container.models.Order.updateOne({ _id: created.id }, { $set: { status } });

    const res = await call(api, 'POST', `/orders/${created.id}/cancel`);

    assertError(t, res, { status: 409, code: 'INVALID_STATE' }, status);
    const doc = await api.container.models.Order.findById(created.id).lean();
    t.is(doc?.status, status);
    t.is(doc?.history.length, 1, `${status}: no history entry added`);
  }
});

test('when one order is cancelled by 20 concurrent requests, then exactly one wins and the rest get 409', async (t) => {
  const created = await createOrder();

  const results = await Promise.all(
    Array.from({ length: 20 }, () => call<OrderBody>(api, 'POST', `/orders/${created.id}/cancel`)),
  );

  const statuses = results.map((r) => r.status).sort();
  t.is(statuses.filter((s) => s === 200).length, 1, JSON.stringify(statuses));
  t.is(statuses.filter((s) => s === 409).length, 19, JSON.stringify(statuses));
  const doc = await api.container.models.Order.findById(created.id).lean();
  t.deepEqual(
    doc?.history.map((h) => h.status),
    ['PENDING', 'CANCELLED'],
  );
});

test('when an unknown path is requested, then it answers 404 NOT_FOUND with the error shape', async (t) => {
  for (const [method, path] of [
    ['GET', '/nope'],
    ['GET', '/'],
    ['POST', '/orders/x/y/z'],
    ['GET', '/orders/ord_00000000000000000000000000000000/cancel/extra'],
  ] as const) {
    const res = await call(api, method, path);
    assertError(t, res, { status: 404, code: 'NOT_FOUND' }, `${method} ${path}`);
    t.regex(res.headers.get('content-type') ?? '', /application\/json/);
  }
});

test('when an error is answered, then X-Request-Id is echoed and equals error.requestId', async (t) => {
  const res = await call(api, 'GET', '/nope', { headers: { 'x-request-id': 'trace-404' } });
  assertError(t, res, { status: 404, code: 'NOT_FOUND' });
  t.is(res.headers.get('x-request-id'), 'trace-404');
});

test('when /metrics is read after order traffic, then http_requests_total uses route templates and service="api"', async (t) => {
  const created = await createOrder();
  await call(api, 'GET', `/orders/${created.id}`);
  await call(api, 'GET', `/orders/ord_${'1'.repeat(32)}`);
  await call(api, 'POST', `/orders/${created.id}/cancel`);

  const res = await call(api, 'GET', '/metrics');

  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^text\/plain/);
  const lines = res.text.split('\n').filter((l) => l.startsWith('http_requests_total{'));
  t.true(lines.length > 0, 'http_requests_total is exported');
  const withLabel = (route: string, status: string) =>
    lines.some(
      (l) =>
        l.includes(`route="${route}"`) &&
        l.includes(`status="${status}"`) &&
        l.includes('service="api"') &&
        l.includes('method='),
    );
  t.true(withLabel('/orders/:id', '200'), lines.join('\n'));
  t.true(withLabel('/orders/:id', '404'), 'a 404 of a matched route keeps its template');
  t.true(withLabel('/orders/:id/cancel', '200'));
  t.true(withLabel('/orders', '201'));
  t.false(/ord_[0-9a-f]{32}/.test(res.text), 'no raw order id in any label');
  t.true(
    res.text.split('\n').every((l) => l.startsWith('#') || l === '' || l.includes('service="api"')),
    'every series carries service="api"',
  );
});
