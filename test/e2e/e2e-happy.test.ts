import test from 'ava';
import type { EffectDocument } from '#common';
import {
  countBy,
  createOrders,
  listAllOrders,
  logEntries,
  parseLine,
  requestJson,
  startTestFleet,
  waitFor,
  stopAndExpectCleanExit,
} from '../helpers/fleet.js';
import { transitionsOf } from '../helpers/orders.js';

const ORDERS = 200;

const sorted = (values: Iterable<string>) => [...values].sort();

test.serial(
  'when 200 orders are posted to the api with two workers running, then each is processed exactly once and the fleet stops cleanly',
  async (t) => {
    const fleet = await startTestFleet(t, { label: 'e2e_happy', workers: 2 });

    // Act: 200 orders, 20 in flight at a time.
    const created = await createOrders(fleet.apiUrl, ORDERS, 20, (n) => `e2e-happy-${n}`);
    const ids = new Set(created.map((o) => o.id));
    t.is(ids.size, ORDERS, 'every order has its own id');
    t.true(
      created.every((o) => o.status === 'PENDING' && o.totalCents === 2599 && o.attempts === 0),
      'the api answers PENDING orders with a server-computed total',
    );

    // Assert: every order reaches PROCESSED, seen through the api's keyset pagination.
    let last: Record<string, number> = {};
    const processed = await waitFor(
      `${ORDERS} PROCESSED orders`,
      async () => {
        const all = await listAllOrders(fleet.apiUrl);
        last = countBy(all, (o) => o.status);
        return last.PROCESSED === ORDERS ? all : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, describe: () => JSON.stringify(last) },
    );
    t.deepEqual(sorted(processed.map((o) => o.id)), sorted(ids), 'the list holds exactly the orders created');
    const byStatus = await listAllOrders(fleet.apiUrl, { status: 'PROCESSED' });
    t.is(byStatus.length, ORDERS, 'GET /orders?status=PROCESSED pages through all of them');
    for (const order of processed) {
      t.is(order.attempts, 1, `${order.id} took one attempt`);
      t.is(order.lastError, null);
      t.truthy(order.processedAt);
      t.deepEqual(
        transitionsOf(order.history).map((h) => h.status),
        ['PENDING', 'PROCESSING', 'PROCESSED'],
        `${order.id} history`,
      );
    }

    // Each order's effect is recorded once, under the order id.
    const db = await fleet.db();
    const effects = await db.collection<EffectDocument>('order_effects').find({}).toArray();
    t.is(effects.length, ORDERS, 'one effect document per order, no more');
    t.deepEqual(sorted(effects.map((e) => e._id)), sorted(ids));
    t.true(effects.every((e) => e.totalCents === 2599 && e.currency === 'EUR' && e.attempt === 1));

    // Both workers took part; together they did each order once.
    const doneByWorker = fleet.workers.map((w) => {
      const done = logEntries(w, 'job done').filter((e) => ids.has(e.orderId as string) && e.outcome === 'completed');
      t.true(done.length > 0, `${w.name} processed some jobs (${done.length})`);
      return done;
    });
    const doneIds = doneByWorker.flat().map((e) => e.orderId as string);
    t.is(doneIds.length, ORDERS, 'one "job done" line per order across the workers');
    t.deepEqual(sorted(doneIds), sorted(ids));

    // The request id of each POST travels with the job: the worker's line carries it as correlationId.
    const requestIdOf = new Map(created.map((o, n) => [o.id, `e2e-happy-${n}`]));
    const mismatched = doneByWorker.flat().filter((e) => e.correlationId !== requestIdOf.get(e.orderId as string));
    t.deepEqual(mismatched, [], 'every "job done" line carries the request id of its POST');

    // Each worker's own metrics agree with its log.
    for (const [i, w] of fleet.workers.entries()) {
      const port = w.lines
        .map(parseLine)
        .find((e) => typeof e?.msg === 'string' && e.msg.startsWith('worker metrics on'))?.port as number | undefined;
      t.truthy(port, `${w.name} serves metrics`);
      const metrics = await requestJson<string>(`http://127.0.0.1:${port}/metrics`);
      const completed = /^worker_jobs_total\{outcome="completed",service="worker"\} (\d+)$/m.exec(metrics.body)?.[1];
      t.is(Number(completed), doneByWorker[i].length, `${w.name} worker_jobs_total{outcome="completed"}`);
    }

    // SIGTERM everything: every process exits 0 and no job is left active.
    const exits = await stopAndExpectCleanExit(t, fleet);
    t.deepEqual(Object.keys(exits).sort(), ['api', 'health', 'worker-1', 'worker-2']);
    const counts = await fleet.queue().getJobCounts('active', 'waiting', 'delayed', 'failed', 'completed');
    t.deepEqual(counts, { active: 0, waiting: 0, delayed: 0, failed: 0, completed: ORDERS });
  },
);
