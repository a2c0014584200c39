import test, { type ExecutionContext } from 'ava';
import type { EffectDocument, OrderView } from '#common';
import {
  startClusterTopology,
  startSentinelTopology,
  type RedisTopologyProcesses,
} from '../../scripts/lib/redis-topology.js';
import { countBy, orderBody, requestJson, startTestFleet, waitFor, type Fleet } from '../helpers/fleet.js';
import { transitionsOf } from '../helpers/orders.js';

// Ports of this file's topologies (scripts/lib/redis-topology.ts searches upward for a free block).
const SENTINEL_BASE_PORT = 44100;
const CLUSTER_BASE_PORT = 44200;

/** Orders posted before, during and after the failover. */
const PER_PHASE = 25;

// The reconciler ticks every second, so a job lost to replication lag is re-added within seconds.
const FLEET_ENV = { RECONCILE_INTERVAL_MS: '1000', RECONCILE_GRACE_MS: '1000', PROCESSING_DELAY_MS: '20' };

/** POSTs `count` orders, 5 at a time; returns every answer's status and the ids of the accepted ones. */
async function postOrders(fleet: Fleet, count: number, from: number) {
  const statuses: number[] = [];
  const accepted: string[] = [];
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const n = from + next++;
      const res = await requestJson<OrderView>(`${fleet.apiUrl}/orders`, { method: 'POST', body: orderBody(n) });
      statuses.push(res.status);
      if (res.status === 201 || res.status === 202) accepted.push(res.body.id);
    }
  };
  await Promise.all(Array.from({ length: 5 }, lane));
  return { statuses, accepted };
}

/**
 * The scenario both topologies run: orders before, a SIGKILL of the master serving the queue's keys,
 * orders while the topology elects a new one, orders after; then every accepted order must be
 * PROCESSED with exactly one effect, and the health process must see Redis up again.
 */
async function failoverDuringLoad(t: ExecutionContext, topology: RedisTopologyProcesses, label: string) {
  const fleet = await startTestFleet(t, { label, workers: 2, topology, env: FLEET_ENV });
  // Every key of the fleet carries the prefix's hash tag: this key's master is the queue's master.
  const queueKey = `${fleet.prefix}:orders:id`;

  const before = await postOrders(fleet, PER_PHASE, 0);
  const master = await topology.masterFor(queueKey);
  await master.kill();
  const during = await postOrders(fleet, PER_PHASE, PER_PHASE);
  const promoted = await topology.waitForNewMaster(queueKey, master, 60_000);
  t.not(promoted.port, master.port, 'a replica took over');
  const after = await postOrders(fleet, PER_PHASE, 2 * PER_PHASE);

  const statuses = [...before.statuses, ...during.statuses, ...after.statuses];
  t.deepEqual(
    statuses.filter((s) => s !== 201 && s !== 202),
    [],
    `every POST answered 201 or 202 (${JSON.stringify(countBy(statuses.map(String), (s) => s))})`,
  );
  const accepted = new Set([...before.accepted, ...during.accepted, ...after.accepted]);
  t.is(accepted.size, 3 * PER_PHASE);

  const db = await fleet.db();
  const orders = db.collection<{ _id: string; status: string; history: Array<{ status: string; step?: string }> }>(
    'orders',
  );
  let last: Record<string, number> = {};
  await waitFor(
    `${accepted.size} orders PROCESSED after the failover`,
    async () => {
      const rows = await orders.find({ _id: { $in: [...accepted] } }, { projection: { status: 1 } }).toArray();
      last = countBy(rows, (r) => r.status);
      return last.PROCESSED === accepted.size ? true : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 500, describe: () => JSON.stringify(last) },
  );
  const rows = await orders.find({ _id: { $in: [...accepted] } }).toArray();
  const doubled = rows.filter((r) => transitionsOf(r.history).filter((h) => h.status === 'PROCESSED').length !== 1);
  t.deepEqual(
    doubled.map((r) => r._id),
    [],
    'each order reached PROCESSED once',
  );
  const effects = await db
    .collection<EffectDocument>('order_effects')
    .find({ _id: { $in: [...accepted] } })
    .toArray();
  t.is(effects.length, accepted.size, 'one effect per accepted order, no more');

  // The health process follows the topology too: ready again on the new master.
  await waitFor(
    'health ready after the failover',
    async () => ((await requestJson(`${fleet.healthUrl}/health/ready`)).status === 200 ? true : undefined),
    { timeoutMs: 30_000, intervalMs: 500 },
  );
  t.true(
    fleet.processes.every((p) => p.child.exitCode === null && p.child.signalCode === null),
    'no process died of the failover',
  );
}

test.serial(
  'when the Sentinel master is SIGKILLed under load, then the replica is promoted and every accepted order ends PROCESSED exactly once',
  async (t) => {
    const topology = await startSentinelTopology({ basePort: SENTINEL_BASE_PORT });
    t.teardown(() => topology.stop());
    await failoverDuringLoad(t, topology, 'e2e_sentinel');
  },
);

test.serial(
  "when the Cluster master owning the queue's slot is SIGKILLed under load, then its replica takes the slot and every accepted order ends PROCESSED exactly once",
  async (t) => {
    const topology = await startClusterTopology({ basePort: CLUSTER_BASE_PORT });
    t.teardown(() => topology.stop());
    await failoverDuringLoad(t, topology, 'e2e_cluster');
  },
);
