import test from 'ava';
import { PUBLIC_SCOPE, orderIdFromKey, type EffectDocument, type OrderView } from '#common';
import { failureDraw } from '../../worker/payments/failure-draw.js';
import {
  countBy,
  createOrders,
  listAllOrders,
  orderBody,
  requestJson,
  startTestFleet,
  waitFor,
  stopAndExpectCleanExit,
} from '../helpers/fleet.js';
import { transitionsOf } from '../helpers/orders.js';

interface DlqPage {
  readonly items: {
    readonly order: OrderView;
    readonly job: { id: string; failedReason: string; attemptsMade: number; finishedOn: number } | null;
  }[];
  readonly nextCursor: string | null;
}

const sorted = (values: Iterable<string>) => [...values].sort();

/** Waits until none of the orders is PENDING or PROCESSING any more; returns them all. */
async function waitUntilSettled(apiUrl: string, count: number, timeoutMs: number): Promise<OrderView[]> {
  let last: Record<string, number> = {};
  return waitFor(
    `${count} orders to end PROCESSED or FAILED`,
    async () => {
      const all = await listAllOrders(apiUrl);
      last = countBy(all, (o) => o.status);
      return all.length === count && all.every((o) => o.status === 'PROCESSED' || o.status === 'FAILED')
        ? all
        : undefined;
    },
    { timeoutMs, intervalMs: 500, describe: () => JSON.stringify(last) },
  );
}

test.serial(
  'when every attempt fails, then each order ends FAILED after JOB_ATTEMPTS attempts and its job is dead-lettered',
  async (t) => {
    const fleet = await startTestFleet(t, {
      label: 'e2e_dlq',
      workers: 1,
      health: false,
      env: { FAILURE_RATE: '1', JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '200' },
    });

    const created = await createOrders(fleet.apiUrl, 5, 5);
    const orders = await waitUntilSettled(fleet.apiUrl, created.length, 30_000);

    t.deepEqual(sorted(orders.map((o) => o.id)), sorted(created.map((o) => o.id)));
    const queue = fleet.queue();
    for (const order of orders) {
      t.is(order.status, 'FAILED', `${order.id} status`);
      t.is(order.attempts, 3, `${order.id} attempts`);
      t.regex(order.lastError ?? '', /simulated failure of ord_\w+ on attempt 3/, `${order.id} lastError`);
      t.truthy(order.failedAt);
      t.is(order.processedAt, null);
      // PROCESSING → PENDING between attempts (a retry scheduled, with its reason), FAILED after the last.
      t.deepEqual(
        transitionsOf(order.history).map((h) => [h.status, h.attempt ?? null]),
        [
          ['PENDING', null],
          ['PROCESSING', 1],
          ['PENDING', null],
          ['PROCESSING', 2],
          ['PENDING', null],
          ['PROCESSING', 3],
          ['FAILED', null],
        ],
        `${order.id} history`,
      );
      const reasons = transitionsOf(order.history)
        .filter((h) => h.status === 'PENDING' || h.status === 'FAILED')
        .slice(1);
      t.deepEqual(
        reasons.map((h) => h.reason),
        [1, 2, 3].map((n) => `simulated failure of ${order.id} on attempt ${n}`),
        `${order.id} reasons`,
      );

      // The job is in BullMQ's failed set (the dead-letter queue) with every attempt spent.
      t.is(await queue.getJobState(order.id), 'failed', `${order.id} job state`);
      const job = await queue.getJob(order.id);
      t.is(job?.attemptsMade, 3, `${order.id} attemptsMade`);
      t.regex(job?.failedReason ?? '', /simulated failure/);
    }
    t.deepEqual(sorted((await queue.getFailed()).map((j) => j.id ?? '')), sorted(created.map((o) => o.id)));

    const db = await fleet.db();
    t.is(await db.collection('order_effects').countDocuments(), 0, 'a failed order has no effect');

    // The api's dead-letter list shows each dead order with its job.
    const dlq = await requestJson<DlqPage>(`${fleet.apiUrl}/dlq?limit=100`);
    t.is(dlq.status, 200);
    t.deepEqual(sorted(dlq.body.items.map((i) => i.order.id)), sorted(created.map((o) => o.id)));
    for (const { order, job } of dlq.body.items) {
      t.is(job?.id, order.id);
      t.is(job?.attemptsMade, 3);
      t.regex(job?.failedReason ?? '', /simulated failure/);
    }

    // Reprocessing one brings it back for a fresh series of attempts, which fail again here.
    const target = created[0].id;
    const reprocess = await requestJson<OrderView>(`${fleet.apiUrl}/dlq/${target}/reprocess`, { method: 'POST' });
    t.is(reprocess.status, 202);
    const again = await waitFor('the reprocessed order FAILED again', async () => {
      const res = await requestJson<OrderView>(`${fleet.apiUrl}/orders/${target}`);
      return res.body.status === 'FAILED' && res.body.attempts === 6 ? res.body : undefined;
    });
    t.deepEqual(
      transitionsOf(again.history)
        .slice(6)
        .map((h) => h.status),
      ['FAILED', 'PENDING', 'PROCESSING', 'PENDING', 'PROCESSING', 'PENDING', 'PROCESSING', 'FAILED'],
    );
    t.is(await queue.getJobState(target), 'failed');

    await stopAndExpectCleanExit(t, fleet);
  },
);

test.serial(
  'when 30% of attempts fail, then every order ends PROCESSED or FAILED as its failure draws say, each PROCESSED one with one effect',
  async (t) => {
    const attempts = 4;
    const rate = 0.3;
    const fleet = await startTestFleet(t, {
      label: 'e2e_flaky',
      workers: 2,
      health: false,
      env: { FAILURE_RATE: String(rate), JOB_ATTEMPTS: String(attempts), JOB_BACKOFF_MS: '50' },
    });

    // 48 orders with random ids, and 2 whose ids (fixed by their Idempotency-Key) fail every attempt,
    // so both outcomes occur on every run.
    const doomedKeys: string[] = [];
    for (let i = 0; doomedKeys.length < 2; i += 1) {
      const id = orderIdFromKey(PUBLIC_SCOPE, `doomed-${i}`);
      if ([1, 2, 3, 4].every((n) => failureDraw(id, n) < rate)) doomedKeys.push(`doomed-${i}`);
    }
    const doomed = await Promise.all(
      doomedKeys.map((key, i) =>
        requestJson<OrderView>(`${fleet.apiUrl}/orders`, {
          method: 'POST',
          body: orderBody(1000 + i),
          headers: { 'idempotency-key': key },
        }),
      ),
    );
    t.deepEqual(
      doomed.map((r) => r.status),
      [201, 201],
    );
    const created = [...(await createOrders(fleet.apiUrl, 48, 10)), ...doomed.map((r) => r.body)];
    const orders = await waitUntilSettled(fleet.apiUrl, created.length, 60_000);
    t.log(`outcome: ${JSON.stringify(countBy(orders, (o) => o.status))}`);

    // Failures are deterministic per order id and attempt (docs/design.md), so each order's fate is known.
    const queue = fleet.queue();
    let retried = 0;
    for (const order of orders) {
      const firstSuccess = [1, 2, 3, 4].find((n) => failureDraw(order.id, n) >= rate);
      const expected = firstSuccess === undefined ? 'FAILED' : 'PROCESSED';
      t.is(order.status, expected, `${order.id} status`);
      t.is(order.attempts, firstSuccess ?? attempts, `${order.id} attempts`);
      if (order.attempts > 1) retried += 1;
      const claims = transitionsOf(order.history)
        .filter((h) => h.status === 'PROCESSING')
        .map((h) => h.attempt);
      t.deepEqual(
        claims,
        Array.from({ length: order.attempts }, (_, i) => i + 1),
        `${order.id} one claim per attempt`,
      );
      t.is(await queue.getJobState(order.id), expected === 'PROCESSED' ? 'completed' : 'failed', `${order.id} job`);
    }
    t.true(retried > 0, 'some orders needed a retry (else this run proves nothing about retries)');
    t.true(
      doomed.every((r) => orders.find((o) => o.id === r.body.id)?.status === 'FAILED'),
      'the orders drawn to fail every attempt are FAILED',
    );

    const db = await fleet.db();
    const effects = await db.collection<EffectDocument>('order_effects').find({}).toArray();
    const processed = orders.filter((o) => o.status === 'PROCESSED');
    t.is(effects.length, processed.length, 'one effect per PROCESSED order, none for FAILED ones');
    t.deepEqual(sorted(effects.map((e) => e._id)), sorted(processed.map((o) => o.id)));
    for (const effect of effects) {
      const order = processed.find((o) => o.id === effect._id);
      t.true(
        effect.attempt === order?.attempts,
        `${effect._id} effect recorded by the successful attempt (${effect.attempt} vs ${order?.attempts})`,
      );
    }

    await stopAndExpectCleanExit(t, fleet);
    t.is(await queue.getActiveCount(), 0);
  },
);
