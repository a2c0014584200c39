import test from 'ava';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { call, postOrder, validOrder, type OrderBody, type PageBody } from '../helpers/api-http.js';

// Nothing listens on port 1: every Redis command of the api fails at once (producers fail fast).
const DEAD_REDIS = 'redis://127.0.0.1:1';
// docs/design.md: new orders are answered 202 while the queue is away. "Fast": well inside a client timeout.
const FAST_MS = 3000;

let api: TestApi;

test.before(async () => {
  api = await startTestApi('api_outage', { REDIS_URL: DEAD_REDIS });
});

test.after.always(async () => {
  if (!api) return;
  // Not api.close(): it obliterates the queue first, and with Redis away BullMQ's obliterate() neither
  // resolves nor rejects (it waits for a connection that never becomes ready), so the hook would hang
  // until ava's timeout. The same steps without the obliterate (there is no queue data to remove):
  api.server.closeAllConnections();
  await new Promise<void>((resolve) => api.server.close(() => resolve()));
  await api.container.mongo.dropDatabase().catch(() => undefined);
  await api.container.close();
});

test('when Redis is away, then POST /orders answers 202 fast and stores the order PENDING with enqueuedAt null', async (t) => {
  const res = await postOrder(api);

  t.is(res.status, 202, res.text);
  t.true(res.ms < FAST_MS, `answered in ${Math.round(res.ms)} ms`);
  t.is(res.body.status, 'PENDING');
  t.regex(res.body.id, /^ord_[0-9a-f]{32}$/);
  t.is(res.body.totalCents, 3097);
  t.is(res.headers.get('location'), `/orders/${res.body.id}`);
  t.truthy(res.headers.get('x-request-id'));
  const doc = await api.container.models.Order.findById(res.body.id).lean();
  t.truthy(doc, 'the order is persisted for the reconciler');
  t.is(doc?.status, 'PENDING');
  t.is(doc?.enqueuedAt, null);
  t.is(doc?.correlationId, res.headers.get('x-request-id') ?? undefined);
});

test('when Redis is away, then GET /orders/:id of an accepted order still answers 200', async (t) => {
  const accepted = await postOrder(api);
  t.is(accepted.status, 202, accepted.text);

  const res = await call<OrderBody>(api, 'GET', `/orders/${accepted.body.id}`);

  t.is(res.status, 200, res.text);
  t.deepEqual(res.body, accepted.body);
});

test('when Redis is away, then 10 concurrent orders are all answered 202 fast and all stored', async (t) => {
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) => postOrder(api, validOrder({ customerId: `outage-${i}` }))),
  );
  const elapsed = performance.now() - started;

  t.deepEqual(
    results.map((r) => r.status),
    Array.from({ length: 10 }, () => 202),
  );
  t.true(elapsed < FAST_MS, `answered in ${Math.round(elapsed)} ms`);
  const docs = await Promise.all(results.map((r) => api.container.models.Order.findById(r.body.id).lean()));
  t.deepEqual(
    docs.map((d) => [d?.status, d?.enqueuedAt]),
    results.map(() => ['PENDING', null]),
    'all stored PENDING, none enqueued',
  );
});

test('when Redis is away, then a replay with the same key answers 200 and the order stays unqueued', async (t) => {
  const key = `outage-${Date.now()}`;
  const first = await postOrder(api, validOrder(), { 'idempotency-key': key });
  t.is(first.status, 202, first.text);

  const again = await postOrder(api, validOrder(), { 'idempotency-key': key });

  t.is(again.status, 200, again.text);
  t.is(again.headers.get('idempotent-replayed'), 'true');
  t.is(again.body.id, first.body.id);
  t.true(again.ms < FAST_MS, `answered in ${Math.round(again.ms)} ms`);
  t.is(await api.container.models.Order.countDocuments({ _id: first.body.id }), 1);
  const doc = await api.container.models.Order.findById(first.body.id).lean();
  t.is(doc?.enqueuedAt, null);
});

test('when Redis is away, then listing and cancelling still work', async (t) => {
  const accepted = await postOrder(api, validOrder({ customerId: 'outage-cancel' }));
  t.is(accepted.status, 202);

  const list = await call<PageBody>(api, 'GET', '/orders?customerId=outage-cancel');
  t.is(list.status, 200);
  t.deepEqual(
    list.body.items.map((o) => o.id),
    [accepted.body.id],
  );
  const cancelled = await call<OrderBody>(api, 'POST', `/orders/${accepted.body.id}/cancel`);
  t.is(cancelled.status, 200, cancelled.text);
  t.is(cancelled.body.status, 'CANCELLED');
});

test('when Redis is away, then /metrics counts the intake as accepted_unqueued', async (t) => {
  const accepted = await postOrder(api);
  t.is(accepted.status, 202);

  const res = await call(api, 'GET', '/metrics');

  t.is(res.status, 200);
  t.regex(res.text, /orders_created_total\{[^}]*result="accepted_unqueued"[^}]*\} [1-9]/);
  t.regex(res.text, /http_requests_total\{[^}]*route="\/orders"[^}]*status="202"/);
});
