import test from 'ava';
import { Redis } from 'ioredis';
import type { EffectDocument, OrderView } from '#common';
import { PrivateRedis } from '../../scripts/chaos/private-services.js';
import { freePort } from '../../scripts/lib/embedded-services.js';
import { createFairShareStore } from '../../worker/fairness/fair-share.js';
import { listAllOrders, orderBody, requestJson, startTestFleet, waitFor } from '../helpers/fleet.js';

/**
 * Slot accounting of the fair share with the real processes: one customer floods, others order too;
 * a worker is SIGKILLed with slots held and Redis restarts under load. No customer ever holds more
 * than its max; every order ends PROCESSED once; afterwards every customer's slot count is 0.
 */

const MAX_ACTIVE = 2;
const FLOOD = 40;
const OTHERS = ['other-1', 'other-2', 'other-3'];
const PER_OTHER = 4;

async function post(apiUrl: string, customerId: string): Promise<OrderView> {
  const res = await requestJson<OrderView>(`${apiUrl}/orders`, {
    method: 'POST',
    body: { ...orderBody(0), customerId },
  });
  if (res.status !== 201) throw new Error(`POST /orders: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

test.serial(
  'when a customer floods and a worker is SIGKILLed and Redis restarts, then no customer exceeds its max, every order is processed once and no slot leaks',
  async (t) => {
    const redisServer = await PrivateRedis.start();
    t.teardown(() => redisServer.close());
    const fleet = await startTestFleet(t, {
      label: 'e2e_fair',
      workers: 1,
      env: {
        REDIS_URL: redisServer.url,
        WORKER_CONCURRENCY: '4',
        MAX_ACTIVE_PER_CUSTOMER: String(MAX_ACTIVE),
        PROCESSING_DELAY_MS: '150',
        RECONCILE_INTERVAL_MS: '1000',
        RECONCILE_GRACE_MS: '2000',
      },
    });
    // The worker to kill serves its metrics on a port the test knows.
    const metricsPort = await freePort();
    const victim = await fleet.addWorker({ WORKER_METRICS_PORT: String(metricsPort) });
    const client = new Redis(redisServer.url, { maxRetriesPerRequest: null });
    client.on('error', () => undefined);
    t.teardown(() => client.disconnect());
    const store = createFairShareStore(client, fleet.name);

    // A sampler of every customer's slots held, all through the run.
    let maxHeld = 0;
    let sampling = true;
    t.teardown(() => {
      sampling = false;
    });
    const sampler = (async () => {
      while (sampling) {
        const held = await store.slotsInUse().catch(() => new Map<string, number>());
        for (const n of held.values()) maxHeld = Math.max(maxHeld, n);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();

    const customers = [
      ...Array<string>(FLOOD).fill('flood'),
      ...OTHERS.flatMap((c) => Array<string>(PER_OTHER).fill(c)),
    ];
    const ids = new Set<string>();
    for (let i = 0; i < customers.length; i += 4) {
      const batch = await Promise.all(customers.slice(i, i + 4).map((c) => post(fleet.apiUrl, c)));
      for (const o of batch) ids.add(o.id);
    }

    // Kill a worker while it holds slots, then restart Redis (keeping its data, as persistence would).
    await waitFor(
      'the victim worker to hold a slot',
      async () => {
        const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
          .then((r) => r.text())
          .catch(() => '');
        return /worker_fair_slots_held\{[^}]*\} [1-9]/.test(metrics) ? true : undefined;
      },
      { intervalMs: 20 },
    );
    await victim.stop('SIGKILL');
    await redisServer.stop({ keepData: true });
    await redisServer.start();

    let counts: Record<string, number> = {};
    await waitFor(
      'every order PROCESSED',
      async () => {
        const all = (await listAllOrders(fleet.apiUrl)).filter((o) => ids.has(o.id));
        counts = {};
        for (const o of all) counts[o.status] = (counts[o.status] ?? 0) + 1;
        return counts.PROCESSED === ids.size ? true : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 1000, describe: () => JSON.stringify(counts) },
    );
    // The killed worker's slots lapse with their leases: every customer's count returns to 0.
    await waitFor(
      'every customer slot count 0',
      async () => ((await store.slotsInUse()).size === 0 ? true : undefined),
      {
        timeoutMs: 60_000,
        describe: () => 'slots still held',
      },
    );
    sampling = false;
    await sampler;

    t.true(maxHeld >= 1, 'the sampler saw slots held');
    t.true(maxHeld <= MAX_ACTIVE, `no customer held more than ${MAX_ACTIVE} slots at once (saw ${maxHeld})`);
    const db = await fleet.db();
    const effects = await db.collection<EffectDocument>('order_effects').find({}).toArray();
    t.is(effects.length, ids.size, 'one effect per order: nothing lost, nothing doubled');
    const orders = await listAllOrders(fleet.apiUrl);
    t.true(
      orders.every((o) => o.priority === 'standard' && o.scheduledFor === null),
      'orders sent without priority or notBefore are standard and unscheduled',
    );
  },
);
