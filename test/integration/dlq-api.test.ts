import test from 'ava';
import { randomOrderId } from '#common';
import { REPROCESS_BATCH } from '../../api/services/dlq-service.js';
import { startTestApi } from '../helpers/api.js';
import { assertError, call, jobsOfOrder, type OrderBody } from '../helpers/api-http.js';
import type { DeadJob } from '../../scripts/lib/dlq/client.js';
import {
  apiKeysEnv,
  makeDeadOrders,
  seedOrder,
  startDeadLetterSystem,
  waitForJobState,
  waitForOrders,
  type DeadLetterSystem,
} from '../helpers/dead-letters.js';
import { stopTestServices } from '../helpers/services.js';
import { transitionsOf } from '../helpers/orders.js';

interface DlqPage {
  readonly items: { readonly order: OrderBody; readonly job: DeadJob | null }[];
  readonly nextCursor: string | null;
}

interface BulkResult {
  readonly reprocessed: number;
  readonly skipped: number;
  readonly notFound: number;
}

const systems: DeadLetterSystem[] = [];

async function system(label: string, env: Record<string, string> = {}): Promise<DeadLetterSystem> {
  const s = await startDeadLetterSystem(label, env);
  systems.push(s);
  return s;
}

test.after.always(async () => {
  await Promise.all(systems.map((s) => s.close()));
  await stopTestServices();
});

const sorted = (values: Iterable<string>) => [...values].sort();

/** Every page of GET /dlq with `limit`, following nextCursor; `onPage` runs after each page. */
async function walkDlq(
  s: DeadLetterSystem,
  limit: number,
  onPage: (page: DlqPage, index: number) => Promise<void> = async () => undefined,
): Promise<DlqPage[]> {
  const pages: DlqPage[] = [];
  let cursor: string | null = null;
  do {
    const query: string = `limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
    const res = await call<DlqPage>(s.api, 'GET', `/dlq?${query}`);
    if (res.status !== 200) throw new Error(`GET /dlq?${query}: ${res.status} ${res.text}`);
    pages.push(res.body);
    await onPage(res.body, pages.length - 1);
    cursor = res.body.nextCursor;
    if (pages.length > 100) throw new Error('GET /dlq pages never end');
  } while (cursor);
  return pages;
}

test.serial(
  'when orders are dead, then GET /dlq lists exactly the FAILED ones with their failed job, matching the failed set, no stack traces',
  async (t) => {
    const s = await system('dlq_list');
    const dead = await makeDeadOrders(s, 3);
    const others = [await seedOrder(s, 'PENDING'), await seedOrder(s, 'PROCESSED'), await seedOrder(s, 'CANCELLED')];

    const res = await call<DlqPage>(s.api, 'GET', '/dlq');

    t.is(res.status, 200, res.text);
    t.deepEqual(sorted(res.body.items.map((i) => i.order.id)), sorted(dead));
    t.is(res.body.nextCursor, null);
    t.false(
      res.body.items.some((i) => others.includes(i.order.id)),
      'PENDING, PROCESSED, CANCELLED orders are not dead',
    );
    // Consistent with BullMQ's failed set, which is the dead-letter queue.
    const failedSet = await s.api.container.queue.getFailed();
    t.deepEqual(sorted(failedSet.map((j) => j.id ?? '')), sorted(dead));
    // Newest failure first.
    const failedAts = res.body.items.map((i) => Date.parse(i.order.failedAt ?? ''));
    t.deepEqual(
      failedAts,
      [...failedAts].sort((a, b) => b - a),
    );

    for (const { order, job } of res.body.items) {
      t.is(order.status, 'FAILED');
      t.is(order.attempts, 2);
      t.truthy(job, `${order.id} has its job`);
      if (!job) continue;
      t.deepEqual(Object.keys(job).sort(), ['attemptsMade', 'failedReason', 'finishedOn', 'id', 'lastFrame', 'state']);
      t.is(job.id, order.id);
      t.is(job.state, 'failed');
      t.is(job.failedReason, `simulated failure of ${order.id} on attempt 2`);
      t.is(job.attemptsMade, 2);
      const bullJob = failedSet.find((j) => j.id === order.id);
      t.is(job.finishedOn, bullJob?.finishedOn ?? -1);
      t.true(Math.abs((job.finishedOn ?? 0) - Date.parse(order.failedAt ?? '')) < 5000, 'finishedOn ≈ failedAt');
      // One frame, one line, file names only.
      t.is(typeof job.lastFrame, 'string');
      t.regex(job.lastFrame ?? '', /^at .*\(?[\w.-]+:\d+:\d+\)?$/, `lastFrame ${job.lastFrame}`);
      t.false(/[\r\n]/.test(job.lastFrame ?? ''), 'lastFrame is a single line');
      t.false(/(^|[\s(])(\/|file:\/\/)/.test(job.lastFrame ?? ''), `no absolute path in ${job.lastFrame}`);
    }
    t.log(`lastFrame: ${res.body.items[0]?.job?.lastFrame}`);
    // Nowhere in the answer a stack trace, a path of this machine or a stacktrace field.
    t.false(res.text.includes('\\n    at '), 'no multi-line stack');
    t.false(res.text.includes(process.cwd()), 'no absolute path');
    t.false(/"stack(trace)?"/.test(res.text), 'no stack field');
    const frames = res.text.match(/at [^"]*:\d+:\d+/g) ?? [];
    t.is(frames.length, dead.length, 'exactly one frame per dead order');
  },
);

test.serial(
  'when GET /dlq is paged, then newest failure comes first and each dead order appears exactly once, even as orders leave the list',
  async (t) => {
    const s = await system('dlq_pages');
    const base = Date.now() - 60_000;
    // 23 dead orders, failures three to a millisecond, so the id breaks ties.
    const dead = await Promise.all(
      Array.from({ length: 23 }, (_, i) =>
        seedOrder(s, 'FAILED', {
          createdAt: new Date(base - i * 10),
          failedAt: new Date(base + 1000 * Math.floor(i / 3)),
        }),
      ),
    );
    await seedOrder(s, 'PROCESSED');
    await seedOrder(s, 'PENDING');
    const docs = await s.api.container.models.Order.find({ status: 'FAILED' }).lean();
    const expected = docs
      .sort((a, b) => b.failedAt!.getTime() - a.failedAt!.getTime() || (a._id < b._id ? 1 : -1))
      .map((d) => d._id);
    t.deepEqual(sorted(expected), sorted(dead));

    const pages = await walkDlq(s, 4);

    t.deepEqual(
      pages.map((p) => p.items.length),
      [4, 4, 4, 4, 4, 3],
    );
    t.deepEqual(
      pages.flatMap((p) => p.items.map((i) => i.order.id)),
      expected,
      'newest failure first, ties by id',
    );
    t.is(pages.at(-1)?.nextCursor, null);
    t.true(
      pages.every((p) => p.items.every((i) => i.job === null)),
      'seeded orders have no job',
    );

    // Reprocessing orders already seen while walking does not shift the pages: keyset, not offsets.
    const seen: string[] = [];
    await walkDlq(s, 5, async (page) => {
      seen.push(...page.items.map((i) => i.order.id));
      const res = await call(s.api, 'POST', `/dlq/${page.items[0].order.id}/reprocess`);
      t.is(res.status, 202);
    });
    t.deepEqual(seen, expected);
    const rest = (await walkDlq(s, 100)).flatMap((p) => p.items.map((i) => i.order.id));
    t.is(rest.length, expected.length - 5, 'the five reprocessed orders left the list');
  },
);

test.serial('when GET /dlq gets a bad limit, cursor or parameter, then it answers 400 naming it', async (t) => {
  const s = await system('dlq_query');
  for (const [query, field] of [
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=1.5', 'limit'],
    ['cursor=***', 'cursor'],
    [`cursor=${Buffer.from('["x","y"]').toString('base64url')}`, 'cursor'],
    ['status=FAILED', 'status'],
  ] as const) {
    assertError(t, await call(s.api, 'GET', `/dlq?${query}`), { status: 400, code: 'VALIDATION_ERROR', field }, query);
  }
});

test.serial(
  'when a dead order is reprocessed, then it is PENDING with who and why in its history, its job retried from attempt 0, and it ends PROCESSED',
  async (t) => {
    const s = await system('dlq_one');
    const [id, other] = await makeDeadOrders(s, 2);
    const before = await s.order(id);
    const queue = s.api.container.queue;
    t.is((await queue.getJob(id))?.attemptsMade, 2);

    const res = await call<OrderBody>(s.api, 'POST', `/dlq/${id}/reprocess`, {
      json: { reason: 'payment provider fixed' },
    });

    t.is(res.status, 202, res.text);
    t.is(res.body.id, id);
    t.is(res.body.status, 'PENDING');
    t.is(transitionsOf(res.body.history).length, transitionsOf(before.history).length + 1);
    t.like(transitionsOf(res.body.history).at(-1), {
      status: 'PENDING',
      reason: 'reprocess requested by public: payment provider fixed',
    });
    const read = await call<OrderBody>(s.api, 'GET', `/orders/${id}`);
    t.is(read.body.status, 'PENDING');
    t.deepEqual(read.body.history, res.body.history);
    const job = await queue.getJob(id);
    t.is(job?.attemptsMade, 0, 'attempts reset');
    t.is(await job?.getState(), 'waiting');
    t.like(job?.data, { orderId: id, correlationId: before.correlationId });
    // The other dead order is left alone.
    t.is((await s.order(other)).status, 'FAILED');
    t.is(await queue.getJobState(other), 'failed');

    // A repeated call changes nothing and answers as the first one did.
    const again = await call<OrderBody>(s.api, 'POST', `/dlq/${id}/reprocess`, { json: { reason: 'again' } });
    t.is(again.status, 202, again.text);
    t.is(again.body.status, 'PENDING');
    t.deepEqual(again.body.history, res.body.history);
    t.is((await jobsOfOrder(s.api, id)).length, 1, 'one job');
    t.like(await queue.getJobCounts('waiting', 'failed'), { waiting: 1, failed: 1 });

    // A worker that succeeds takes it; a call while it runs still answers 202 and changes nothing.
    await s.startWorker({ FAILURE_RATE: '0', PROCESSING_DELAY_MS: '1500' });
    const [running] = await waitForOrders(s, [id], 'PROCESSING', (o) => o.status === 'PROCESSING');
    const during = await call<OrderBody>(s.api, 'POST', `/dlq/${id}/reprocess`);
    t.is(during.status, 202, during.text);
    t.is(during.body.status, 'PROCESSING');
    t.is(transitionsOf(during.body.history).length, transitionsOf(running.history).length);
    t.is((await jobsOfOrder(s.api, id)).length, 1, 'still one job');

    const [done] = await waitForOrders(s, [id], 'PROCESSED', (o) => o.status === 'PROCESSED');
    t.deepEqual(
      transitionsOf(done.history)
        .slice(transitionsOf(before.history).length)
        .map((h) => [h.status, h.attempt ?? null, h.reason ?? null]),
      [
        ['PENDING', null, 'reprocess requested by public: payment provider fixed'],
        ['PROCESSING', 1, null],
        ['PROCESSED', null, null],
      ],
    );
    t.is(done.attempts, 3, 'attempts counts every claim');
    t.is(await s.effects(id), 1);
    await waitForJobState(s, id, 'completed');
    t.is((await s.order(other)).status, 'FAILED');

    // Now PROCESSED: no longer a dead letter.
    assertError(t, await call(s.api, 'POST', `/dlq/${id}/reprocess`), { status: 409, code: 'INVALID_STATE' });
    t.is(await s.effects(id), 1);
  },
);

test.serial(
  'when several reprocess calls for a dead order arrive at once, then every one answers 202 and one job runs',
  async (t) => {
    const s = await system('dlq_race');
    const ids = await makeDeadOrders(s, 3);

    const results = await Promise.all(
      ids.flatMap((id) => Array.from({ length: 4 }, () => call<OrderBody>(s.api, 'POST', `/dlq/${id}/reprocess`))),
    );

    t.deepEqual(
      results.filter((r) => r.status !== 202).map((r) => `${r.status} ${r.text}`),
      [],
      'every call answers 202',
    );
    for (const id of ids) {
      const order = await s.order(id);
      t.is(order.status, 'PENDING');
      t.is(
        transitionsOf(order.history).filter((h) => h.reason?.startsWith('reprocess requested')).length,
        1,
        'one reprocess entry',
      );
      t.is((await jobsOfOrder(s.api, id)).length, 1);
      t.is((await s.api.container.queue.getJob(id))?.attemptsMade, 0);
      t.is(await s.api.container.queue.getJobState(id), 'waiting');
    }
  },
);

test.serial(
  'when the order is not dead, then reprocess answers 409 INVALID_STATE and changes nothing; an unknown order is a 404',
  async (t) => {
    const s = await system('dlq_409');
    const pending = await seedOrder(s, 'PENDING');
    const processed = await seedOrder(s, 'PROCESSED');
    const cancelled = await seedOrder(s, 'CANCELLED');
    // Dead once, then cancelled by the customer: no longer reprocessable.
    const deadThenCancelled = await seedOrder(s, 'FAILED');
    t.is((await call(s.api, 'POST', `/orders/${deadThenCancelled}/cancel`)).status, 200);

    for (const id of [pending, processed, cancelled, deadThenCancelled]) {
      const before = await s.order(id);
      const res = await call(s.api, 'POST', `/dlq/${id}/reprocess`, { json: { reason: 'try' } });
      assertError(t, res, { status: 409, code: 'INVALID_STATE' }, before.status);
      t.deepEqual(await s.order(id), before, `${before.status} order unchanged`);
      t.is(await s.api.container.queue.getJob(id), undefined, 'no job added');
    }

    for (const id of [randomOrderId(), 'ord_nope', 'nope']) {
      assertError(t, await call(s.api, 'POST', `/dlq/${id}/reprocess`), { status: 404, code: 'NOT_FOUND' }, id);
    }
  },
);

test.serial(
  'when the failed job was cleaned from Redis, then reprocess adds it anew and the order ends PROCESSED',
  async (t) => {
    const s = await system('dlq_cleaned');
    const [id] = await makeDeadOrders(s, 1);
    const queue = s.api.container.queue;
    await (await queue.getJob(id))?.remove();
    t.is(await queue.getJob(id), undefined);
    const listed = await call<DlqPage>(s.api, 'GET', '/dlq');
    t.deepEqual(
      listed.body.items.map((i) => [i.order.id, i.job]),
      [[id, null]],
      'still dead, without a job',
    );

    const res = await call<OrderBody>(s.api, 'POST', `/dlq/${id}/reprocess`, { json: { reason: 'job was cleaned' } });

    t.is(res.status, 202, res.text);
    t.is(res.body.status, 'PENDING');
    const job = await queue.getJob(id);
    t.truthy(job, 're-added');
    t.is(job?.attemptsMade, 0);
    t.is(await job?.getState(), 'waiting');
    t.is(job?.data.orderId, id);

    await s.startWorker({ FAILURE_RATE: '0' });
    const [done] = await waitForOrders(s, [id], 'PROCESSED', (o) => o.status === 'PROCESSED');
    t.deepEqual(
      transitionsOf(done.history)
        .slice(-4)
        .map((h) => h.status),
      ['FAILED', 'PENDING', 'PROCESSING', 'PROCESSED'],
    );
    t.is(transitionsOf(done.history).at(-3)?.reason, 'reprocess requested by public: job was cleaned');
    t.is(await s.effects(id), 1);
  },
);

test.serial(
  'when POST /dlq/reprocess names orders or none, then it brings back the dead ones and counts reprocessed, skipped and not found',
  async (t) => {
    const s = await system('dlq_bulk');
    const [a, b, c, d] = await makeDeadOrders(s, 4);
    const processed = await seedOrder(s, 'PROCESSED');
    const unknown = randomOrderId();
    const queue = s.api.container.queue;

    const some = await call<BulkResult>(s.api, 'POST', '/dlq/reprocess', {
      json: { orderIds: [a, b, processed, unknown], reason: 'bulk fix' },
    });
    t.is(some.status, 202, some.text);
    t.deepEqual(some.body, { reprocessed: 2, skipped: 1, notFound: 1 });
    for (const id of [a, b]) {
      const order = await s.order(id);
      t.is(order.status, 'PENDING');
      t.is(transitionsOf(order.history).at(-1)?.reason, 'reprocess requested by public: bulk fix');
      t.is((await queue.getJob(id))?.attemptsMade, 0);
    }
    t.is((await s.order(c)).status, 'FAILED');

    const repeat = await call<BulkResult>(s.api, 'POST', '/dlq/reprocess', { json: { orderIds: [a] } });
    t.deepEqual(repeat.body, { reprocessed: 0, skipped: 1, notFound: 0 }, 'already back: skipped');

    // No body: every dead order.
    const all = await call<BulkResult>(s.api, 'POST', '/dlq/reprocess');
    t.is(all.status, 202, all.text);
    t.deepEqual(all.body, { reprocessed: 2, skipped: 0, notFound: 0 });
    t.like(await queue.getJobCounts('waiting', 'failed'), { waiting: 4, failed: 0 });
    for (const id of [c, d]) t.is((await s.order(id)).history.at(-1)?.reason, 'reprocess requested by public');

    const none = await call<BulkResult>(s.api, 'POST', '/dlq/reprocess', { json: {} });
    t.is(none.status, 202);
    t.deepEqual(none.body, { reprocessed: 0, skipped: 0, notFound: 0 });

    await s.startWorker({ FAILURE_RATE: '0' });
    await waitForOrders(s, [a, b, c, d], 'PROCESSED', (o) => o.status === 'PROCESSED');
    for (const id of [a, b, c, d]) t.is(await s.effects(id), 1);
    t.deepEqual((await call<DlqPage>(s.api, 'GET', '/dlq')).body.items, []);
  },
);

test.serial(
  'when more orders are dead than one batch holds, then POST /dlq/reprocess brings back all of them',
  async (t) => {
    const s = await system('dlq_batches');
    const count = REPROCESS_BATCH + 30;
    const ids = await Promise.all(Array.from({ length: count }, () => seedOrder(s, 'FAILED')));

    const res = await call<BulkResult>(s.api, 'POST', '/dlq/reprocess', { json: { reason: 'outage over' } });

    t.is(res.status, 202, res.text);
    t.deepEqual(res.body, { reprocessed: count, skipped: 0, notFound: 0 });
    t.is(await s.api.container.models.Order.countDocuments({ status: 'FAILED' }), 0);
    t.is((await s.api.container.queue.getJobCounts('waiting')).waiting, count);
    t.deepEqual(sorted((await s.api.container.queue.getWaiting(0, -1)).map((j) => j.id ?? '')), sorted(ids));
  },
);

test.serial(
  'when a reprocess body is bad, then 400 names the field, a non-JSON body is 415, and the order stays dead',
  async (t) => {
    const s = await system('dlq_bodies');
    const id = await seedOrder(s, 'FAILED');
    const before = await s.order(id);
    const one = `/dlq/${id}/reprocess`;
    const many = '/dlq/reprocess';

    const invalid: [string, unknown, string | RegExp][] = [
      [one, { reason: 5 }, 'reason'],
      [one, { reason: 'x'.repeat(201) }, 'reason'],
      [one, { reason: 'two\nlines' }, 'reason'],
      [one, { why: 'x' }, 'why'],
      [one, { orderIds: [id] }, 'orderIds'],
      [one, [], /.*/],
      [many, { orderIds: [] }, 'orderIds'],
      [many, { orderIds: id }, 'orderIds'],
      [many, { orderIds: ['nope'] }, 'orderIds.0'],
      [many, { orderIds: [id, id] }, /^orderIds/],
      [many, { orderIds: Array.from({ length: 1001 }, () => randomOrderId()) }, 'orderIds'],
      [many, { orderIds: [id], all: true }, 'all'],
      [many, { reason: 7 }, 'reason'],
    ];
    for (const [path, json, field] of invalid) {
      const res = await call(s.api, 'POST', path, { json });
      assertError(
        t,
        res,
        { status: 400, code: 'VALIDATION_ERROR', field },
        `${path} ${JSON.stringify(json).slice(0, 60)}`,
      );
    }

    for (const path of [one, many]) {
      for (const body of ['{"reason":', '"just a string"', 'null']) {
        const res = await call(s.api, 'POST', path, { body, headers: { 'content-type': 'application/json' } });
        assertError(t, res, { status: 400, code: 'INVALID_JSON' }, `${path} ${body}`);
      }
      const unsupported: { body: string | Uint8Array; headers?: Record<string, string> }[] = [
        { body: 'reason=x' },
        { body: 'reason=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
        { body: '<reason>x</reason>', headers: { 'content-type': 'application/xml' } },
        { body: new TextEncoder().encode('{"reason":"x"}') },
      ];
      for (const options of unsupported) {
        const res = await call(s.api, 'POST', path, options);
        assertError(t, res, { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' }, `${path} ${String(options.body)}`);
      }
      // Without Content-Length (chunked): still a body, still refused.
      const chunked = await fetch(`${s.api.baseUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('reason=x'));
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
      t.is(chunked.status, 415, `${path} chunked text/plain: ${await chunked.text()}`);
    }

    t.deepEqual(await s.order(id), before, 'still dead, history unchanged');
    t.is(await s.api.container.queue.getJob(id), undefined, 'no job added');
  },
);

test.serial(
  'when API keys are configured, then the DLQ routes refuse callers without a key or with a non-admin key, and serve the admin',
  async (t) => {
    const keys = apiKeysEnv();
    const s = await system('dlq_auth', { API_KEYS: keys.API_KEYS });
    const [one, two] = [await seedOrder(s, 'FAILED'), await seedOrder(s, 'FAILED')];
    const as = (key?: string) => (key ? { authorization: `Bearer ${key}` } : undefined);
    const routes: [string, string, unknown][] = [
      ['GET', '/dlq', undefined],
      ['POST', `/dlq/${one}/reprocess`, { reason: 'x' }],
      ['POST', '/dlq/reprocess', { orderIds: [two] }],
    ];

    for (const [method, path, json] of routes) {
      for (const [who, key] of [
        ['no key', undefined],
        ['non-admin key', keys.shopKey],
        ['unknown key', 'not-a-configured-key'],
      ] as const) {
        const res = await call(s.api, method, path, { json, headers: as(key) });
        assertError(t, res, { status: 401, code: 'UNAUTHORIZED' }, `${method} ${path} with ${who}`);
      }
    }
    t.is((await s.order(one)).status, 'FAILED', 'refused calls changed nothing');
    t.is((await s.order(two)).status, 'FAILED');

    const list = await call<DlqPage>(s.api, 'GET', '/dlq', { headers: as(keys.opsKey) });
    t.is(list.status, 200, list.text);
    t.deepEqual(sorted(list.body.items.map((i) => i.order.id)), sorted([one, two]));
    const single = await call<OrderBody>(s.api, 'POST', `/dlq/${one}/reprocess`, {
      json: { reason: 'checked by ops' },
      headers: as(keys.opsKey),
    });
    t.is(single.status, 202, single.text);
    t.is(
      transitionsOf(single.body.history).at(-1)?.reason,
      'reprocess requested by ops: checked by ops',
      'who and why',
    );
    const bulk = await call<BulkResult>(s.api, 'POST', '/dlq/reprocess', {
      json: { orderIds: [two] },
      headers: as(keys.opsKey),
    });
    t.is(bulk.status, 202, bulk.text);
    t.deepEqual(bulk.body, { reprocessed: 1, skipped: 0, notFound: 0 });
    t.is((await s.order(two)).history.at(-1)?.reason, 'reprocess requested by ops');
  },
);

test.serial(
  'when Redis is away, then GET /dlq answers 503, reprocess is accepted (202), and the reconciler finishes it once Redis is back',
  async (t) => {
    // Nothing listens on port 1: every Redis command of this api fails at once.
    const outage = await startTestApi('dlq_outage', { REDIS_URL: 'redis://127.0.0.1:1', LOG_LEVEL: 'silent' });
    t.teardown(async () => {
      // Not close(): with Redis away BullMQ's obliterate waits for a connection that never comes.
      outage.server.closeAllConnections();
      await new Promise<void>((resolve) => outage.server.close(() => resolve()));
      await outage.container.close();
    });
    const [one, two] = [await seedOrder({ api: outage }, 'FAILED'), await seedOrder({ api: outage }, 'FAILED')];

    const list = await call(outage, 'GET', '/dlq');
    assertError(t, list, { status: 503, code: 'SERVICE_UNAVAILABLE' });
    t.truthy(list.headers.get('retry-after'));
    t.true(list.ms < 3000, `answered in ${Math.round(list.ms)} ms`);

    const res = await call<OrderBody>(outage, 'POST', `/dlq/${one}/reprocess`, { json: { reason: 'during outage' } });
    t.is(res.status, 202, res.text);
    t.is(res.body.status, 'PENDING');
    t.is(transitionsOf(res.body.history).at(-1)?.reason, 'reprocess requested by public: during outage');
    t.is((await call(outage, 'POST', `/dlq/${one}/reprocess`)).status, 202, 'a repeated call too');
    const bulk = await call<BulkResult>(outage, 'POST', '/dlq/reprocess', { json: { orderIds: [two] } });
    t.is(bulk.status, 202, bulk.text);
    t.deepEqual(bulk.body, { reprocessed: 1, skipped: 0, notFound: 0 });

    // Redis is back: a worker's reconciler finds the PENDING orders without a job and queues them.
    const s = await system('dlq_outage_back', {
      MONGO_URL: outage.config.mongoUrl,
      QUEUE_PREFIX: outage.config.queuePrefix,
    });
    await s.startWorker({ RECONCILE_INTERVAL_MS: '200', RECONCILE_GRACE_MS: '0' });
    await waitForOrders(s, [one, two], 'PROCESSED', (o) => o.status === 'PROCESSED', 30_000);
    t.is(await s.effects(one), 1);
    t.is(await s.effects(two), 1);
  },
);
