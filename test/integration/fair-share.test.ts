import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createBurstMeter, createLogger, createRedisConnection, orderJob, type ProcessOrderJobData } from '#common';
import type { Job } from 'bullmq';
import { createFairGate, maxActiveFor } from '../../worker/fairness/fair-gate.js';
import { createFairShareMetrics } from '../../worker/fairness/fair-metrics.js';
import { createFairShareStore, type FairShareStore } from '../../worker/fairness/fair-share.js';
import { PrivateRedis } from '../../scripts/chaos/private-services.js';
import { testServices, uniqueName } from '../helpers/services.js';
import { waitFor } from '../helpers/fleet.js';

/** The fair share's Redis scripts against a real Redis: slots, leases, pacing, the fleet register. */

const logger = createLogger({ service: 'test', level: 'silent' });
const LEASE = 60_000;
let redis: Redis;

test.before(async () => {
  const services = await testServices();
  redis = createRedisConnection(services.redisUrl, { role: 'worker', connectionName: 'fair-share-test' });
});
test.after.always(() => redis.disconnect());

function freshStore(): { store: FairShareStore; prefix: string } {
  const prefix = uniqueName('fair');
  return { store: createFairShareStore(redis, prefix), prefix };
}

const options = (maxActive: number, spacingMs = 10) => ({ leaseMs: LEASE, maxActive, spacingMs });

test('when a customer holds its max slots, then the next job is told to wait and others are not', async (t) => {
  const { store } = freshStore();
  t.is(await store.acquire('a', 'j1', options(2)), 0);
  t.is(await store.acquire('a', 'j2', options(2)), 0);
  t.true((await store.acquire('a', 'j3', options(2))) > 0, 'the third job of a waits');
  t.is(await store.acquire('b', 'k1', options(2)), 0, 'another customer takes a slot at once');
  t.deepEqual(Object.fromEntries(await store.slotsInUse()), { a: 2, b: 1 });

  await store.release('a', 'j1');
  t.is(await store.acquire('a', 'j3', options(2)), 0, 'a released slot is taken by the waiting job');
  t.deepEqual(Object.fromEntries(await store.slotsInUse()), { a: 2, b: 1 });
});

test('when a job that holds a slot asks again (taken over after a stall), then it keeps its one slot', async (t) => {
  const { store } = freshStore();
  t.is(await store.acquire('a', 'j1', options(1)), 0);
  t.is(await store.acquire('a', 'j1', options(1)), 0, 'the same job id holds its slot again');
  t.deepEqual(Object.fromEntries(await store.slotsInUse()), { a: 1 }, 'never counted twice');
});

test('when jobs of a full customer are deferred, then each waits one spacing longer than the one before', async (t) => {
  const { store } = freshStore();
  await store.acquire('a', 'j1', options(1, 1000));
  const waits = [];
  for (const id of ['j2', 'j3', 'j4']) waits.push(await store.acquire('a', id, options(1, 1000)));
  // Redis TIME moves on between the calls, so each step is the spacing less a few ms at most.
  t.true(waits[0] > 0 && waits[0] <= 1000, `first wait ${waits[0]}`);
  t.true(waits[1] - waits[0] > 900 && waits[1] - waits[0] <= 1000, `waits ${waits.join(', ')}`);
  t.true(waits[2] - waits[1] > 900 && waits[2] - waits[1] <= 1000, `waits ${waits.join(', ')}`);
});

test('when a holder never releases (its worker was killed), then its slot lapses with its lease', async (t) => {
  const { store } = freshStore();
  t.is(await store.acquire('a', 'dead', { leaseMs: 200, maxActive: 1, spacingMs: 10 }), 0);
  t.true((await store.acquire('a', 'next', options(1))) > 0);
  await waitFor('the lapsed slot to be taken', async () =>
    (await store.acquire('a', 'next', options(1))) === 0 ? true : undefined,
  );
  t.deepEqual(Object.fromEntries(await store.slotsInUse()), { a: 1 });
});

test("when lapsed leases fill a customer's share, then they are swept and the job takes a slot", async (t) => {
  const { store } = freshStore();
  const short = { leaseMs: 1000, maxActive: 2, spacingMs: 10 };
  t.is(await store.acquire('a', 'dead1', short), 0);
  t.is(await store.acquire('a', 'dead2', short), 0);
  t.true((await store.acquire('a', 'next', options(2))) > 0, 'both slots held while their leases run');
  // Both lapse (their holders never released); the set still counts them until a full acquire sweeps.
  await waitFor('both leases to lapse', async () => ((await store.slotsInUse()).size === 0 ? true : undefined), {
    timeoutMs: 10_000,
    intervalMs: 50,
  });
  t.is(await store.acquire('a', 'next', options(2)), 0, 'the full set is swept and the job takes a slot');
  t.is(await store.acquire('a', 'other', options(2)), 0, 'the second lapsed slot was swept too');
  t.deepEqual(Object.fromEntries(await store.slotsInUse()), { a: 2 });
});

test('when a job takes a slot with a shorter lease than one held, then the key still outlives the longer lease', async (t) => {
  const { store, prefix } = freshStore();
  t.is(await store.acquire('a', 'long', options(2)), 0);
  t.is(await store.acquire('a', 'short', { leaseMs: 200, maxActive: 2, spacingMs: 10 }), 0);
  t.true((await redis.pttl(`${prefix}:orders:fair:a`)) > LEASE / 2, 'the key lives as long as the longest lease');
  await store.release('a', 'long');
  await store.release('a', 'short');
  t.is(await redis.exists(`${prefix}:orders:fair:a`), 0, 'an emptied set is gone');
  t.is(await store.acquire('a', 'again', { leaseMs: 5000, maxActive: 2, spacingMs: 10 }), 0);
  const ttl = await redis.pttl(`${prefix}:orders:fair:a`);
  t.true(ttl > 0 && ttl <= 5000, `a new set expires with its one lease (${ttl} ms)`);
});

test('when a lease is renewed, then the slot outlives the first lease; renewing a lapsed slot says so', async (t) => {
  const { store, prefix } = freshStore();
  t.is(await store.acquire('a', 'j1', { leaseMs: 300, maxActive: 1, spacingMs: 10 }), 0);
  t.true(await store.renew('a', 'j1', LEASE));
  const score = Number(await redis.zscore(`${prefix}:orders:fair:a`, 'j1'));
  t.true(score > Date.now() + LEASE / 2, 'the lease now runs a minute');
  t.false(await store.renew('a', 'other', LEASE), 'a job without a slot gets none by renewing');
  t.deepEqual(Object.fromEntries(await store.slotsInUse()), { a: 1 });
});

test('when every key of the fair share is listed, then each lives under the prefix and the queue name', async (t) => {
  const { store, prefix } = freshStore();
  await store.acquire('a', 'j1', options(1));
  await store.acquire('a', 'j2', options(1));
  await store.register('w1', 8, 60_000);
  const keys = (await redis.keys(`${prefix}*`)).sort();
  t.deepEqual(keys, [
    `${prefix}:orders:fair-fleet`,
    `${prefix}:orders:fair-fleet:concurrency`,
    `${prefix}:orders:fair:a`,
    `${prefix}:orders:fair:a:next`,
  ]);
  for (const key of keys) t.true((await redis.pttl(key)) > 0, `${key} expires by itself`);
});

test('when workers register, then the total is the sum of the live ones and a leaver drops out', async (t) => {
  const { store } = freshStore();
  t.is(await store.register('w1', 10, 60_000), 10);
  t.is(await store.register('w2', 6, 60_000), 16);
  t.is(await store.register('w3', 4, 1), 20);
  await waitFor('w3 to lapse', async () => ((await store.register('w1', 10, 60_000)) === 16 ? true : undefined));
  t.is(await store.register('w2', 6, 0), 10, 'a worker that leaves is no longer counted');
  t.is(maxActiveFor(16, undefined), 4, 'default max: a quarter of the fleet');
  t.is(maxActiveFor(3, undefined), 1, 'never below one');
  t.is(maxActiveFor(16, 7), 7, 'MAX_ACTIVE_PER_CUSTOMER wins');
});

function fakeJob(id: string, customerId?: string): Job<ProcessOrderJobData> {
  return {
    id,
    data: { orderId: id, correlationId: 'c', ...(customerId && { customerId }) },
  } as Job<ProcessOrderJobData>;
}

test('when jobs pass the gate, then the metrics follow slots held and deferrals, and leaving frees the slot', async (t) => {
  const { store } = freshStore();
  const registry = new Registry();
  const metrics = createFairShareMetrics(registry);
  const gate = createFairGate({
    store,
    workerId: uniqueName('w'),
    concurrency: 4,
    maxActive: undefined,
    leaseMs: LEASE,
    metrics,
    logger,
  });
  await gate.start();
  t.is(gate.maxActive(), 1, 'a quarter of this one worker of 4');
  const first = await gate.enter(fakeJob('j1', 'a'));
  const second = await gate.enter(fakeJob('j2', 'a'));
  const legacy = await gate.enter(fakeJob('j3'));
  t.true('leave' in first);
  t.true('waitMs' in second && second.waitMs > 0, 'the second job of a waits');
  t.true('leave' in legacy, 'a job without a customer passes without a slot');
  const text = await registry.metrics();
  t.regex(text, /worker_fair_slots_held 1\b/);
  t.regex(text, /worker_fair_deferrals_total 1\b/);
  t.regex(text, /worker_fair_max_active 1\b/);
  if ('leave' in first) first.leave();
  t.regex(await registry.metrics(), /worker_fair_slots_held 0\b/, 'the gauge drops as the job leaves');
  // The release lingers for the next acquire (RELEASE_LINGER_MS), then goes alone.
  await waitFor('the slot to be free', async () => ((await store.slotsInUse()).size === 0 ? true : undefined), {
    timeoutMs: 2000,
    intervalMs: 10,
  });
  await gate.close();
});

/** A store on a redis-server of the test's own (restarted, or counted, without touching others). */
async function privateStore(
  t: ExecutionContext,
  label: string,
): Promise<{ server: PrivateRedis; store: FairShareStore }> {
  const server = await PrivateRedis.start();
  t.teardown(() => server.close());
  const client = new Redis(server.url, { maxRetriesPerRequest: null });
  client.on('error', () => undefined);
  t.teardown(() => client.disconnect());
  return { server, store: createFairShareStore(client, uniqueName(label)) };
}

test.serial(
  'when Redis restarts (with or without its data), then the scripts run again and no slot is left held',
  async (t) => {
    const { server, store } = await privateStore(t, 'fair_restart');
    const short = { leaseMs: 500, maxActive: 2, spacingMs: 10 };

    t.is(await store.acquire('a', 'j1', short), 0);
    t.is(await store.acquire('a', 'j2', short), 0);
    // Kept data: the slots come back with their leases (their holders died with the restart) and lapse.
    await server.stop({ keepData: true });
    await server.start();
    await waitFor('the restored slots to lapse', async () =>
      (await store.slotsInUse()).size === 0 ? true : undefined,
    );
    t.is(await store.acquire('a', 'j3', short), 0, 'the script runs again after the restart (reloaded)');
    // Lost data: nothing is held afterwards, and the scripts are loaded again.
    await server.stop({ keepData: false });
    await server.start();
    t.deepEqual(Object.fromEntries(await store.slotsInUse()), {});
    t.is(await store.acquire('a', 'j4', short), 0);
    await store.release('a', 'j4');
    await waitFor('every slot free', async () => ((await store.slotsInUse()).size === 0 ? true : undefined));
    t.pass();
  },
);

test.serial('when a slot is free, then the acquire runs only the commands it needs and the release one', async (t) => {
  const { server, store } = await privateStore(t, 'fair_commands');
  await store.acquire('warm', 'j0', options(2)); // loads the script (EVALSHA, then SCRIPT LOAD or EVAL)
  const admin = new Redis(server.url);
  t.teardown(() => admin.disconnect());
  /** Commands Redis ran since the last call, by name (INFO commandstats), without the admin's own. */
  const ran = async (): Promise<Record<string, number>> => {
    const text = await admin.info('commandstats');
    await admin.config('RESETSTAT');
    const counts: Record<string, number> = {};
    for (const [, name, calls] of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (!/^(info|config)\b/.test(name)) counts[name] = Number(calls); // Redis 7 names `config|resetstat`
    }
    return counts;
  };
  await ran();

  t.is(await store.acquire('a', 'j1', options(2)), 0);
  t.deepEqual(await ran(), { evalsha: 1, time: 1, zcard: 1, zadd: 1, pexpire: 1 }, 'an empty set: no sweep, no PTTL');
  t.is(await store.acquire('a', 'j2', options(2)), 0);
  // PTTL, then PEXPIRE unless the key's expiry is still the whole lease (within the same millisecond).
  const { pexpire = 0, ...held } = await ran();
  t.deepEqual(held, { evalsha: 1, time: 1, zcard: 1, zadd: 1, pttl: 1 }, 'a set others hold slots in: no sweep');
  t.true(pexpire <= 1);
  t.true((await store.acquire('a', 'j3', options(2))) > 0);
  t.like(
    await ran(),
    { zremrangebyscore: 1, zscore: 1 },
    "a full set is swept of lapsed leases, then the job's own asked",
  );
  await store.release('a', 'j1');
  t.deepEqual(await ran(), { zrem: 1 });
});

test('when a customer adds more than its burst limit in a minute, then only the excess is over, and others are not', async (t) => {
  const prefix = uniqueName('fair_burst');
  const meter = createBurstMeter(redis, prefix, 3);
  t.deepEqual(await meter.overLimit(['a', 'a', 'b', 'a']), [false, false, false, false]);
  t.deepEqual(await meter.overLimit(['a', 'b', 'a']), [true, false, true], 'a is past 3 this minute; b is not');
  const keys = await redis.keys(`${prefix}:orders:fair:*`);
  t.true(keys.length > 0 && keys.every((k) => /:orders:fair:[ab]:in:\d+$/.test(k)), keys.join(', '));
  for (const key of keys) t.true((await redis.pttl(key)) > 0, `${key} expires by itself`);
  const order = { id: 'ord_1', correlationId: 'c', customerId: 'a', priority: 'express' as const, notBefore: null };
  t.deepEqual(
    orderJob(order, { now: new Date(), overBurst: true }).opts,
    { jobId: 'ord_1', priority: 1 },
    'queued as bulk',
  );
});
