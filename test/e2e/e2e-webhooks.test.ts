import { createServer, type AddressInfo, type Socket } from 'node:net';
import test from 'ava';
import { PUBLIC_SCOPE, orderIdFromKey, type OrderView } from '#common';
import { startWebhookReceiver } from '../../scripts/lib/webhook-receiver.js';
import { failureDraw } from '../../worker/payments/failure-draw.js';
import {
  countBy,
  createOrders,
  listAllOrders,
  logEntries,
  orderBody,
  requestJson,
  startTestFleet,
  stopAndExpectCleanExit,
  waitFor,
} from '../helpers/fleet.js';

/** Webhooks end to end (issue 14): the real processes, a real receiver verifying with `standardwebhooks`. */

const SECRET = `whsec_${Buffer.alloc(32, 5).toString('base64')}`;
const FAILURE_RATE = 0.5;

/** Idempotency keys whose order ids fail (or pass) the simulated charge on the first attempt. */
function keys(prefix: string, count: number, fails: boolean): string[] {
  const found: string[] = [];
  for (let i = 0; found.length < count; i += 1) {
    const id = orderIdFromKey(PUBLIC_SCOPE, `${prefix}-${i}`);
    if (failureDraw(id, 1) < FAILURE_RATE === fails) found.push(`${prefix}-${i}`);
  }
  return found;
}

test.serial(
  'when orders end PROCESSED, REJECTED, FAILED and CANCELLED, then each outcome produces exactly one verified event',
  async (t) => {
    const receiver = await startWebhookReceiver({ secret: SECRET });
    t.teardown(() => receiver.close());
    const fleet = await startTestFleet(t, {
      label: 'e2e_hooks',
      workers: 1,
      health: false,
      env: {
        WEBHOOK_URL: receiver.url,
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_RETRY_HORIZON_MS: '40950',
        FAILURE_RATE: String(FAILURE_RATE),
        JOB_ATTEMPTS: '1',
      },
    });
    const put = await requestJson(`${fleet.apiUrl}/inventory/SKU-GONE`, { method: 'PUT', body: { available: 0 } });
    t.is(put.status, 200);
    const post = (key: string, body: unknown) =>
      requestJson<OrderView>(`${fleet.apiUrl}/orders`, { method: 'POST', body, headers: { 'idempotency-key': key } });
    const bodies = [
      ...keys('ok', 6, false).map((k, n) => [k, orderBody(n)] as const),
      ...keys('doom', 3, true).map((k, n) => [k, orderBody(100 + n)] as const),
      ...keys('gone', 2, false).map(
        (k, n) =>
          [
            k,
            { customerId: `c-${n}`, items: [{ sku: 'SKU-GONE', quantity: 1, unitPriceCents: 5 }], currency: 'EUR' },
          ] as const,
      ),
    ];
    const created = await Promise.all(bodies.map(([k, b]) => post(k, b)));
    t.deepEqual(new Set(created.map((r) => r.status)), new Set([201]));

    const settled = await waitFor('orders to settle', async () => {
      const all = await listAllOrders(fleet.apiUrl);
      return all.length === bodies.length && all.every((o) => ['PROCESSED', 'REJECTED', 'FAILED'].includes(o.status))
        ? all
        : undefined;
    });
    t.deepEqual(
      countBy(settled, (o) => o.status),
      { PROCESSED: 6, FAILED: 3, REJECTED: 2 },
    );
    const failed = settled.filter((o) => o.status === 'FAILED');
    const cancel = await requestJson<OrderView>(`${fleet.apiUrl}/orders/${failed[0]!.id}/cancel`, { method: 'POST' });
    t.is(cancel.status, 200);

    const expected = [...settled.map((o) => `${o.id}-${o.status.toLowerCase()}`), `${failed[0]!.id}-cancelled`].sort();
    await waitFor(
      'an event for every outcome',
      async () => (receiver.deliveries.length >= expected.length ? true : undefined),
      { timeoutMs: 30_000, describe: () => `${receiver.deliveries.length} of ${expected.length}` },
    );
    await new Promise((r) => setTimeout(r, 1000)); // any duplicate would arrive meanwhile
    t.deepEqual(receiver.deliveries.map((d) => d.webhookId).sort(), expected, 'one delivery per order and outcome');
    for (const d of receiver.deliveries) {
      t.truthy(d.event, `${d.webhookId} verifies: ${d.error}`);
      const status = d.webhookId.split('-').at(-1)!;
      t.is(d.event?.type, `order.${status}`);
      t.is(d.event?.data.status, status.toUpperCase());
      t.is(`${d.event?.data.id}-${status}`, d.webhookId);
    }
    // Logs name the order and the webhook-id of each delivery.
    const logged = logEntries(fleet.workers[0]!, 'order event delivered');
    t.true(logged.some((e) => typeof e.orderId === 'string' && typeof e.webhookId === 'string'));
    await stopAndExpectCleanExit(t, fleet);
  },
);

/** Seconds from the first POST until every one of `count` orders is PROCESSED, with the fleet's env. */
async function processingSeconds(
  t: Parameters<typeof startTestFleet>[0],
  label: string,
  count: number,
  env: Record<string, string>,
) {
  const fleet = await startTestFleet(t, { label, workers: 1, health: false, env });
  const started = Date.now();
  await createOrders(fleet.apiUrl, count, 20);
  await waitFor(
    `${count} orders processed`,
    async () => ((await listAllOrders(fleet.apiUrl, { status: 'PROCESSED' })).length === count ? true : undefined),
    { timeoutMs: 120_000, intervalMs: 100 },
  );
  const seconds = (Date.now() - started) / 1000;
  await stopAndExpectCleanExit(t, fleet);
  return seconds;
}

test.serial(
  'when the receiver never answers, then every order is still processed and the fleet still stops cleanly',
  async (t) => {
    const sockets: Socket[] = [];
    const blackHole = createServer((s) => sockets.push(s)); // accepts connections, never answers
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    t.teardown(() => {
      for (const s of sockets) s.destroy();
      blackHole.close();
    });
    const port = (blackHole.address() as AddressInfo).port;
    const count = 100;
    // How fast is the benchmark's business (`npm run bench -- --only webhooks` prints the ratio against
    // webhooks off); a timed assertion on a shared machine would only measure the machine. This test
    // holds what must be true whatever the speed: delivery never stands in the order's way.
    const seconds = await processingSeconds(t, 'e2e_hooks_dead', count, {
      WEBHOOK_URL: `http://127.0.0.1:${port}/webhooks`,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_TIMEOUT_MS: '5000',
    });
    t.log(`${count} orders processed in ${seconds.toFixed(2)} s with a receiver that never answers`);
    t.true(sockets.length > 0, 'deliveries were attempted');
  },
);
