import test from 'ava';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { call, enqueuedAtRecorded, postOrder, queueSnapshot, validOrder } from '../helpers/api-http.js';
import { startFreezableProxy } from '../helpers/freezable-proxy.js';
import { testServices } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

// Group commit at intake (INTAKE_GROUP_COMMIT, on by default) against real MongoDB and Redis over
// real HTTP. The idempotency and Redis-outage guarantees under batching are api-idempotency.test.ts
// and api-outage.test.ts, which run with it on.

/** "Fast", well inside a client's timeout, and far from "held until MongoDB returns" (30 s+). */
const FAST_MS = 5000;

/** The orders_intake_batch_size histogram's count and sum for one write, from /metrics. */
async function batchStats(api: TestApi, write: 'insert' | 'enqueue') {
  const text = (await call(api, 'GET', '/metrics')).text;
  const read = (what: string) =>
    Number(
      new RegExp(`^orders_intake_batch_size_${what}\\{[^}]*write="${write}"[^}]*\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0,
    );
  return { batches: read('count'), orders: read('sum') };
}

test.serial(
  'when 50 requests arrive at once, then each is created with its own order and job, in fewer inserts and adds than orders',
  async (t) => {
    const api = await startTestApi('group_commit');
    t.teardown(() => api.close());

    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => postOrder(api, validOrder({ customerId: `gc-${i}` }))),
    );

    t.deepEqual(
      results.map((r) => r.status),
      results.map(() => 201),
    );
    t.is(new Set(results.map((r) => r.body.id)).size, 50);
    t.is(await api.container.models.Order.countDocuments(), 50);
    t.is((await queueSnapshot(api)).jobs, 50);
    for (const r of results) {
      const stored = await api.container.models.Order.findById(r.body.id).lean();
      t.is(stored?.customerId, r.body.customerId, 'each request got its own order back');
      await enqueuedAtRecorded(api, r.body.id);
    }
    // addBulk keeps the queue's job policy (attempts, back-off, retention) and the job id = order id.
    const job = await api.container.queue.getJob(results[0].body.id);
    t.is(job?.id, results[0].body.id);
    t.is(job?.opts.attempts, api.config.jobAttempts);
    t.like(job?.opts.backoff, { type: 'exponential', delay: api.config.jobBackoffMs });
    t.is(job?.opts.removeOnFail, false);
    t.deepEqual(job?.data, {
      orderId: results[0].body.id,
      correlationId: results[0].headers.get('x-request-id'),
      customerId: results[0].body.customerId,
    });
    const inserts = await batchStats(api, 'insert');
    const adds = await batchStats(api, 'enqueue');
    t.is(inserts.orders, 50);
    t.is(adds.orders, 50);
    t.true(inserts.batches < 50, `50 orders in ${inserts.batches} inserts`);
    t.true(adds.batches < 50, `50 jobs in ${adds.batches} adds`);
  },
);

test.serial('when group commit is off, then each order is written on its own and intake still works', async (t) => {
  const api = await startTestApi('group_commit_off', { INTAKE_GROUP_COMMIT: 'off' });
  t.teardown(() => api.close());

  const results = await Promise.all(Array.from({ length: 10 }, () => postOrder(api, validOrder())));

  t.deepEqual(
    results.map((r) => r.status),
    results.map(() => 201),
  );
  t.is((await queueSnapshot(api)).jobs, 10);
  t.deepEqual(await batchStats(api, 'insert'), { batches: 0, orders: 0 });
});

test.serial(
  'when MongoDB freezes, then concurrent POSTs (waiting and in flight) are all answered 503 with Retry-After fast, and intake resumes once it answers',
  async (t) => {
    const real = new URL((await testServices()).mongoUrl('x'));
    const proxy = await startFreezableProxy({ host: real.hostname, port: Number(real.port || 27017) });
    t.teardown(() => proxy.close());
    const api = await startTestApi('group_commit_frozen', {
      MONGO_URL: `mongodb://127.0.0.1:${proxy.port}/group_commit_frozen_${process.pid}`,
    });
    t.teardown(async () => {
      proxy.thaw();
      await api.close();
    });
    const before = await postOrder(api, validOrder());
    t.is(before.status, 201, before.text);

    proxy.freeze();
    const results = await Promise.all(Array.from({ length: 20 }, () => postOrder(api, validOrder())));

    for (const r of results) {
      t.is(r.status, 503, r.text);
      t.is((r.body as { error?: { code?: string } }).error?.code, 'SERVICE_UNAVAILABLE');
      t.truthy(r.headers.get('retry-after'));
      t.true(r.ms < FAST_MS, `answered in ${Math.round(r.ms)} ms`);
    }
    const live = await call(api, 'GET', '/health/live');
    t.is(live.status, 200, 'the api stays up');

    proxy.thaw();
    const after = await waitFor(
      'a POST to be created once MongoDB answers again',
      async () => {
        const r = await postOrder(api, validOrder());
        return r.status === 201 ? r : undefined;
      },
      30_000,
    );
    t.is(after.status, 201);
  },
);
