import test, { type ExecutionContext } from 'ava';
import type { OrderView } from '#common';
import {
  countBy,
  listAllOrders,
  requestJson,
  startTestFleet,
  stopAndExpectCleanExit,
  waitFor,
  type Fleet,
} from '../helpers/fleet.js';
import { startTestSandbox, type TestSandbox } from '../helpers/payment-sandbox.js';

/** The user stories of the order workflow (issue 13), with real processes, real MongoDB, Redis and HTTP. */

interface StockLevel {
  readonly sku: string;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
}

const SETTLED = new Set(['PROCESSED', 'REJECTED', 'FAILED', 'CANCELLED']);

function oneUnit(n: number, sku: string, metadata?: Record<string, string>) {
  return {
    customerId: `c-${n}`,
    items: [{ sku, quantity: 1, unitPriceCents: 1000 }],
    currency: 'EUR',
    ...(metadata ? { metadata } : {}),
  };
}

async function setStock(fleet: Fleet, sku: string, available: number): Promise<void> {
  const res = await requestJson<StockLevel>(`${fleet.apiUrl}/inventory/${sku}`, { method: 'PUT', body: { available } });
  if (res.status !== 200) throw new Error(`PUT /inventory/${sku}: ${res.status} ${JSON.stringify(res.body)}`);
}

async function stock(fleet: Fleet, sku: string): Promise<StockLevel> {
  const res = await requestJson<StockLevel>(`${fleet.apiUrl}/inventory/${sku}`);
  if (res.status !== 200) throw new Error(`GET /inventory/${sku}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Posts every body at once (all in flight together); each must be accepted with 201. */
async function postAll(fleet: Fleet, bodies: readonly unknown[]): Promise<OrderView[]> {
  return Promise.all(
    bodies.map(async (body, n) => {
      const res = await requestJson<OrderView>(`${fleet.apiUrl}/orders`, { method: 'POST', body });
      if (res.status !== 201) throw new Error(`POST /orders #${n}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    }),
  );
}

/** Waits until every one of `count` orders is in a final state; returns them. */
async function settled(fleet: Fleet, count: number, timeoutMs = 60_000): Promise<OrderView[]> {
  let last: Record<string, number> = {};
  return waitFor(
    `${count} orders to settle`,
    async () => {
      const all = await listAllOrders(fleet.apiUrl);
      last = countBy(all, (o) => o.status);
      return all.length === count && all.every((o) => SETTLED.has(o.status)) ? all : undefined;
    },
    { timeoutMs, intervalMs: 300, describe: () => JSON.stringify(last) },
  );
}

async function order(fleet: Fleet, id: string): Promise<OrderView> {
  const res = await requestJson<OrderView>(`${fleet.apiUrl}/orders/${id}`);
  if (res.status !== 200) throw new Error(`GET /orders/${id}: ${res.status}`);
  return res.body;
}

/** Per order id: how many succeeded charges stand at the sandbox (succeeded and not refunded). */
function standingCharges(charges: Awaited<ReturnType<TestSandbox['charges']>>): Map<string, number> {
  const standing = new Map<string, number>();
  for (const c of charges) {
    if (c.status === 'succeeded' && c.refunds.length === 0) standing.set(c.orderId, (standing.get(c.orderId) ?? 0) + 1);
  }
  return standing;
}

async function sandboxFor(t: ExecutionContext, settings: Parameters<typeof startTestSandbox>[0] = {}) {
  const sandbox = await startTestSandbox(settings);
  t.teardown(() => sandbox.close());
  return sandbox;
}

test.serial(
  'when 80 one-unit orders race for 50 in stock, then exactly 50 end PROCESSED, 30 REJECTED OUT_OF_STOCK, and the stock shows 0 / 0 / 50',
  async (t) => {
    const fleet = await startTestFleet(t, {
      label: 'e2e_wf_stock',
      health: false,
      env: { PROCESSING_DELAY_MS: '5' },
    });
    await setStock(fleet, 'SKU-W', 50);

    const created = await postAll(
      fleet,
      Array.from({ length: 80 }, (_, n) => oneUnit(n, 'SKU-W')),
    );
    const orders = await settled(fleet, created.length);

    t.deepEqual(
      countBy(orders, (o) => o.status),
      { PROCESSED: 50, REJECTED: 30 },
    );
    for (const o of orders.filter((x) => x.status === 'REJECTED')) {
      t.is(o.rejectionReason, 'OUT_OF_STOCK', `${o.id} reason`);
      t.is(o.steps?.reserve, undefined, `${o.id} never reserved`);
    }
    for (const o of orders.filter((x) => x.status === 'PROCESSED')) {
      t.is(o.steps?.reserve?.status, 'done');
      t.is(o.steps?.charge?.status, 'done');
      t.is(o.steps?.confirm?.status, 'done');
      t.is(o.rejectionReason, null);
    }
    t.like(await stock(fleet, 'SKU-W'), { available: 0, reserved: 0, sold: 50 });
    // Bull Board shows a job's progress: the last saga step it ended.
    // (written best effort beside the step, so it may land a moment after the order's own write)
    const progressOf = async (id: string) => JSON.stringify((await fleet.queue().getJob(id))?.progress);
    const processedId = orders.find((o) => o.status === 'PROCESSED')!.id;
    const rejectedId = orders.find((o) => o.status === 'REJECTED')!.id;
    await waitFor('the jobs to show their last step', async () =>
      (await progressOf(processedId)) === JSON.stringify({ step: 'confirm', outcome: 'done' }) &&
      (await progressOf(rejectedId)) === JSON.stringify({ step: 'reserve', outcome: 'rejected' })
        ? true
        : undefined,
    );
    t.pass('a processed job shows confirm done, a rejected one reserve rejected');

    // Orders for a SKU with no inventory document are not counted and not refused.
    const [untracked] = await postAll(fleet, [oneUnit(99, 'SKU-UNTRACKED')]);
    await waitFor('the untracked order to be processed', async () =>
      (await order(fleet, untracked.id)).status === 'PROCESSED' ? true : undefined,
    );
    t.is((await requestJson(`${fleet.apiUrl}/inventory/SKU-UNTRACKED`)).status, 404);
    await stopAndExpectCleanExit(t, fleet);
  },
);

test.serial(
  'when orders are charged through the sandbox, then each has one succeeded charge as its reference, and a declined card ends REJECTED with its stock released and no charge standing',
  async (t) => {
    const sandbox = await sandboxFor(t);
    const fleet = await startTestFleet(t, {
      label: 'e2e_wf_pay',
      health: false,
      workers: 1,
      env: { PAYMENT_PROVIDER_URL: sandbox.url },
    });
    await setStock(fleet, 'SKU-P', 10);

    const [paid, declined] = await postAll(fleet, [oneUnit(1, 'SKU-P'), oneUnit(2, 'SKU-P', { testCard: 'declined' })]);
    await settled(fleet, 2);

    const paidView = await order(fleet, paid.id);
    t.is(paidView.status, 'PROCESSED');
    const paidCharges = await sandbox.charges(paid.id);
    t.is(paidCharges.length, 1);
    t.is(paidCharges[0].status, 'succeeded');
    t.is(paidView.steps?.charge?.ref, paidCharges[0].id, 'the charge id is the checkpoint reference');
    t.true(
      paidView.history.some((h) => h.step === 'charge' && h.action === 'done' && h.ref === paidCharges[0].id),
      'history records the charge',
    );

    const declinedView = await order(fleet, declined.id);
    t.is(declinedView.status, 'REJECTED');
    t.is(declinedView.rejectionReason, 'PAYMENT_DECLINED');
    t.is(declinedView.steps?.reserve?.status, 'compensated', 'the reservation was given back');
    t.true(declinedView.history.some((h) => h.step === 'reserve' && h.action === 'compensated'));
    const declinedCharges = await sandbox.charges(declined.id);
    t.deepEqual(
      declinedCharges.map((c) => c.status),
      ['declined'],
    );
    t.like(await stock(fleet, 'SKU-P'), { available: 9, reserved: 0, sold: 1 });
    await stopAndExpectCleanExit(t, fleet);
  },
);

test.serial(
  'when a worker is SIGKILLed while charges are in flight, then every order still ends PROCESSED once with exactly one succeeded charge and one sale',
  async (t) => {
    // Charges are made at once but answered 1.5 s late: the worker dies between charge and checkpoint.
    const sandbox = await sandboxFor(t, { slowMs: 1500 });
    const fleet = await startTestFleet(t, {
      label: 'e2e_wf_kill',
      health: false,
      workers: 1,
      env: { PAYMENT_PROVIDER_URL: sandbox.url, PAYMENT_TIMEOUT_MS: '5000', JOB_BACKOFF_MS: '200' },
    });
    await setStock(fleet, 'SKU-K', 100);
    const created = await postAll(
      fleet,
      Array.from({ length: 12 }, (_, n) => oneUnit(n, 'SKU-K')),
    );
    await waitFor('charges in flight at the sandbox', async () =>
      (await sandbox.stats()).charges >= 3 ? true : undefined,
    );
    await fleet.workers[0].stop('SIGKILL');
    const chargedBeforeKill = (await sandbox.stats()).charges;
    await sandbox.configure({ slowMs: 0 });
    await fleet.addWorker();

    const orders = await settled(fleet, created.length, 90_000);
    t.deepEqual(
      countBy(orders, (o) => o.status),
      { PROCESSED: created.length },
    );
    const standing = standingCharges(await sandbox.charges());
    for (const o of created) t.is(standing.get(o.id), 1, `${o.id}: one succeeded charge`);
    t.is((await sandbox.charges()).filter((c) => c.status === 'succeeded').length, created.length, 'no second charge');
    t.like(await stock(fleet, 'SKU-K'), { available: 100 - created.length, reserved: 0, sold: created.length });
    const db = await fleet.db();
    t.is(await db.collection('order_effects').countDocuments(), created.length, 'one effect record per order');
    t.log(`charges made before the kill: ${chargedBeforeKill}`);
  },
);

test.serial(
  'when the payment provider is down, then the breaker opens, orders wait without spending attempts, none ends FAILED, and all drain once it is back',
  async (t) => {
    const sandbox = await sandboxFor(t, { outage: '503' });
    const fleet = await startTestFleet(t, {
      label: 'e2e_wf_breaker',
      workers: 1,
      env: {
        PAYMENT_PROVIDER_URL: sandbox.url,
        // Calls that fail before the breaker trips are ordinary failures and spend an attempt: that is
        // what a volume and an error share mean. At the default 50 % share, eight concurrent calls let
        // four failures through, and on a slow machine one of them can come back for its last attempt
        // before the rest have failed. With a 1 % share the breaker trips on the first failure once two
        // calls were made, so at most the very first call spends an attempt, and the test asserts what
        // the breaker promises: once it is open, nothing spends an attempt.
        PAYMENT_BREAKER_VOLUME: '2',
        PAYMENT_BREAKER_ERROR_PERCENT: '1',
        PAYMENT_BREAKER_RESET_MS: '1000',
        JOB_ATTEMPTS: '2',
        JOB_BACKOFF_MS: '100',
      },
    });
    const metricsLine = fleet.workers[0].lines.find((l) => /metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/.test(l));
    const metricsPort = /127\.0\.0\.1:(\d+)\/metrics/.exec(metricsLine ?? '')?.[1];
    if (!metricsPort) throw new Error('the worker did not say where its metrics are');
    const created = await postAll(
      fleet,
      Array.from({ length: 8 }, (_, n) => oneUnit(n, 'SKU-B')),
    );
    await waitFor('the breaker to open', async () => {
      const metrics = await requestJson<string>(`http://127.0.0.1:${metricsPort}/metrics`);
      return /^payment_breaker_state\{[^}]*\} 2$/m.test(metrics.body) ? true : undefined;
    });
    await waitFor('the health process to report the open breaker', async () => {
      const health = await requestJson<{ paymentProvider?: { breaker?: string } }>(`${fleet.healthUrl}/health`);
      return health.body.paymentProvider?.breaker === 'open' ? true : undefined;
    });
    // Well past the whole retry budget (2 attempts, 100 ms back-off): nothing may die of the outage.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const during = await listAllOrders(fleet.apiUrl);
    t.is(during.filter((o) => o.status === 'FAILED').length, 0, 'no order dead-lettered by the outage');
    const callsWhileOpen = (await sandbox.stats()).calls;

    await sandbox.configure({ outage: 'none' });
    const orders = await settled(fleet, created.length, 60_000);
    t.deepEqual(
      countBy(orders, (o) => o.status),
      { PROCESSED: created.length },
    );
    t.true(callsWhileOpen < 8 * 4, `calls during the outage stayed bounded (${callsWhileOpen})`);
  },
);

test.serial(
  'when charges fail until attempts run out, then the order ends FAILED with its stock released, and a reprocess runs the saga again from reserve',
  async (t) => {
    const fleet = await startTestFleet(t, {
      label: 'e2e_wf_dead',
      health: false,
      workers: 1,
      env: { FAILURE_RATE: '1', JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '100', PROCESSING_DELAY_MS: '1' },
    });
    await setStock(fleet, 'SKU-D', 5);
    const [created] = await postAll(fleet, [oneUnit(1, 'SKU-D')]);
    await settled(fleet, 1);

    const dead = await order(fleet, created.id);
    t.is(dead.status, 'FAILED');
    t.is(dead.steps?.reserve?.status, 'compensated', 'the reservation was released when the order died');
    t.true(dead.history.some((h) => h.step === 'reserve' && h.action === 'compensated'));
    t.like(await stock(fleet, 'SKU-D'), { available: 5, reserved: 0, sold: 0 });

    // A worker whose provider no longer fails takes the reprocessed order through every step again.
    await fleet.workers[0].stop('SIGTERM');
    await fleet.addWorker({ FAILURE_RATE: '0' });
    const reprocess = await requestJson(`${fleet.apiUrl}/dlq/${created.id}/reprocess`, { method: 'POST' });
    t.is(reprocess.status, 202);
    await waitFor('the reprocessed order to be processed', async () =>
      (await order(fleet, created.id)).status === 'PROCESSED' ? true : undefined,
    );
    const done = await order(fleet, created.id);
    t.is(done.steps?.reserve?.status, 'done');
    t.is(done.steps?.confirm?.status, 'done');
    t.like(await stock(fleet, 'SKU-D'), { available: 4, reserved: 0, sold: 1 });
  },
);
