import { Writable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createLogger, createRedisConnection, type ProcessOrderJobData } from '#common';
import { createFairGate, type FairEntry } from '../../worker/fairness/fair-gate.js';
import { createFairShareMetrics } from '../../worker/fairness/fair-metrics.js';
import { createFairShareStore } from '../../worker/fairness/fair-share.js';
import { startRedisRecordingProxy, type RecordedCommand } from '../helpers/redis-recording-proxy.js';
import { testServices, uniqueName } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The gate's slot releases against a real Redis: queued at leave, written together with the next
 * acquire (one round trip) or alone after the linger, and at close. The gate's connection
 * goes through a proxy that records its commands by round trip, so a test sees which travelled together.
 */

const LEASE = 60_000;
/** A bound for "within the linger" that a loaded machine still meets; the lease (a minute) is far off. */
const FREED_WITHIN_MS = 2000;
let redis: Redis;
let target: { host: string; port: number };

test.before(async () => {
  const { redisUrl } = await testServices();
  const url = new URL(redisUrl);
  target = { host: url.hostname, port: Number(url.port || 6379) };
  redis = createRedisConnection(redisUrl, { role: 'worker', connectionName: 'fair-gate-test' });
});
test.after.always(() => redis.disconnect());

function fakeJob(id: string, customerId: string): Job<ProcessOrderJobData> {
  return { id, data: { orderId: id, correlationId: 'c', customerId } } as Job<ProcessOrderJobData>;
}

/** A gate on its own connection through a recording proxy, with its logs and metrics readable. */
async function setup(t: ExecutionContext, maxActive: number) {
  const proxy = await startRedisRecordingProxy(target);
  t.teardown(() => proxy.close());
  const connection = createRedisConnection(`redis://${target.host}:${proxy.port}`, {
    role: 'worker',
    connectionName: 'fair-gate-under-test',
  });
  connection.on('error', () => undefined);
  t.teardown(() => connection.disconnect());
  const store = createFairShareStore(connection, uniqueName('fair_gate'));
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const registry = new Registry();
  const workerId = uniqueName('w');
  const gate = createFairGate({
    store,
    workerId,
    concurrency: 4,
    maxActive,
    leaseMs: LEASE,
    metrics: createFairShareMetrics(registry),
    logger: createLogger({ service: 'test', level: 'warn', destination }),
  });
  await connection.ping();
  proxy.clear();
  const slots = store.keys.slots;
  /** Each round trip since the last clear: `zrem <key> <member>`, `script <first key> <first arg>` or the name. */
  const writes = () => proxy.writes().map((w) => w.map(summary));
  const members = (customerId: string) => redis.zrange(slots(customerId), 0, -1);
  const freed = (customerId: string, jobId: string) =>
    waitFor(
      `${customerId}/${jobId}'s slot to be free`,
      async () => ((await redis.zscore(slots(customerId), jobId)) === null ? true : undefined),
      FREED_WITHIN_MS,
      () => JSON.stringify(writes()),
    );
  return { gate, store, proxy, connection, lines, registry, workerId, slots, writes, members, freed };
}

function summary(c: RecordedCommand): string {
  if (c.name === 'zrem') return `zrem ${c.args.join(' ')}`;
  if (c.name === 'eval' || c.name === 'evalsha') return `script ${c.args[2]} ${c.args[2 + Number(c.args[1])]}`;
  return c.name;
}

/** The entry's slot; throws (failing the test) when the job was told to wait. */
function holding(entry: FairEntry): { leave(): void } {
  if (!('leave' in entry)) throw new Error(`expected a slot, was told to wait ${entry.waitMs} ms`);
  return entry;
}

test('when a job leaves and no other job enters, then its release goes alone and the slot is free after the linger', async (t) => {
  const { gate, proxy, slots, writes, freed } = await setup(t, 1);
  const entry = holding(await gate.enter(fakeJob('j1', 'a')));
  proxy.clear();

  const result: unknown = entry.leave();

  t.false(result instanceof Promise, 'leave() returns at once');
  await freed('a', 'j1');
  t.deepEqual(writes(), [[`zrem ${slots('a')} j1`]], 'one round trip: the release alone, with no acquire');
});

test('when a job leaves and the next one enters, then the release and the acquire go in one round trip, release first', async (t) => {
  const { gate, proxy, slots, writes, members } = await setup(t, 1);
  const first = holding(await gate.enter(fakeJob('j1', 'a')));
  proxy.clear();

  first.leave();
  const second = await gate.enter(fakeJob('j2', 'a'));

  t.true('leave' in second, 'j2 takes the slot j1 gave back in the same round trip');
  t.deepEqual(writes(), [[`zrem ${slots('a')} j1`, `script ${slots('a')} j2`]], 'one round trip');
  t.deepEqual(await members('a'), ['j2']);
  const third = await gate.enter(fakeJob('j3', 'a'));
  t.true('waitMs' in third && third.waitMs > 0, "a's next job waits: its one slot is j2's");
  t.deepEqual(writes().at(-1), [`script ${slots('a')} j3`], 'no release left to send');
});

test('when several jobs leave in one turn, then their releases share one round trip', async (t) => {
  const { gate, proxy, slots, writes, freed } = await setup(t, 2);
  const entries = [];
  for (const [id, customer] of [
    ['j1', 'a'],
    ['j2', 'a'],
    ['k1', 'b'],
  ] as const) {
    entries.push(holding(await gate.enter(fakeJob(id, customer))));
  }
  proxy.clear();

  for (const entry of entries) entry.leave();

  await Promise.all([freed('a', 'j1'), freed('a', 'j2'), freed('b', 'k1')]);
  t.deepEqual(writes(), [[`zrem ${slots('a')} j1`, `zrem ${slots('a')} j2`, `zrem ${slots('b')} k1`]]);
});

test('when a release sent with an acquire fails, then the acquire keeps its own answer, and the reverse', async (t) => {
  const { gate, proxy, slots, writes, lines, registry } = await setup(t, 1);
  // A release that fails: its slot set replaced by a string (ZREM answers WRONGTYPE).
  const broken = holding(await gate.enter(fakeJob('b1', 'broken')));
  await redis.set(slots('broken'), 'not a sorted set', 'PX', LEASE);
  proxy.clear();
  broken.leave();
  const next = await gate.enter(fakeJob('a1', 'a'));

  t.deepEqual(writes(), [[`zrem ${slots('broken')} b1`, `script ${slots('a')} a1`]]);
  t.true('leave' in next, "a1 holds a's slot although the release before it failed");
  t.truthy(
    lines.find((l) => l.msg === 'slot not released' && l.jobId === 'b1'),
    'the failed release is logged',
  );
  t.regex(await registry.metrics(), /worker_fair_unchecked_total 0\b/);

  // An acquire that fails (its customer's slot set is a string) after a release that succeeds.
  const other = holding(await gate.enter(fakeJob('c1', 'c')));
  await redis.set(slots('bad'), 'not a sorted set', 'PX', LEASE);
  proxy.clear();
  other.leave();
  const unchecked = await gate.enter(fakeJob('x1', 'bad'));

  t.deepEqual(writes(), [[`zrem ${slots('c')} c1`, `script ${slots('bad')} x1`]]);
  t.true('leave' in unchecked, 'x1 runs without a slot');
  t.is(await redis.zscore(slots('c'), 'c1'), null, "c1's release went through");
  t.regex(await registry.metrics(), /worker_fair_unchecked_total 1\b/);
  t.truthy(lines.find((l) => l.msg === 'fair-share check failed; the job runs without a slot' && l.jobId === 'x1'));
  t.is(lines.filter((l) => l.msg === 'slot not released').length, 1, "c1's release is not reported as failed");
});

test('when the gate closes, then its queued releases go out before it leaves the fleet register', async (t) => {
  const { gate, store, proxy, slots, writes, workerId } = await setup(t, 1);
  await gate.start();
  t.not(await redis.hget(store.keys.concurrency, workerId), null);
  const entry = holding(await gate.enter(fakeJob('j1', 'a')));
  proxy.clear();

  entry.leave();
  await gate.close();

  t.is(await redis.zscore(slots('a'), 'j1'), null, 'freed by the time close() resolves');
  t.deepEqual(writes(), [[`zrem ${slots('a')} j1`], [`script ${store.keys.fleet} ${workerId}`]]);
  t.is(await redis.hget(store.keys.concurrency, workerId), null, 'left the fleet register');
});

test('when Redis is gone as a job leaves, then the failed release is logged, not thrown', async (t) => {
  const { gate, connection, slots, lines } = await setup(t, 1);
  const entry = holding(await gate.enter(fakeJob('j1', 'a')));
  connection.disconnect();

  t.notThrows(() => entry.leave());

  const warning = await waitFor('the warning', async () =>
    lines.find((l) => l.msg === 'slot not released' && l.jobId === 'j1'),
  );
  t.is(warning.level, 'warn');
  await t.notThrowsAsync(gate.close());
  t.not(await redis.zscore(slots('a'), 'j1'), null, 'the slot is left to its lease');
});

test('when a job enters again before its release went out, then the release goes first in the same round trip and the job holds its slot', async (t) => {
  const { gate, proxy, slots, writes, members, freed } = await setup(t, 1);
  const first = holding(await gate.enter(fakeJob('j1', 'a')));
  proxy.clear();

  first.leave();
  const again = holding(await gate.enter(fakeJob('j1', 'a')));

  t.deepEqual(writes(), [[`zrem ${slots('a')} j1`, `script ${slots('a')} j1`]]);
  t.deepEqual(await members('a'), ['j1']);
  await gate.enter(fakeJob('k1', 'b'));
  t.deepEqual(writes().at(-1), [`script ${slots('b')} k1`], 'nothing of the first holding is left to send');
  t.deepEqual(await members('a'), ['j1'], 'the new holding keeps its slot');
  again.leave();
  await freed('a', 'j1');
});

test('when two entries of one job overlap on this worker, then only the last one to end releases the slot', async (t) => {
  const { gate, proxy, slots, writes, members, freed, registry } = await setup(t, 1);
  const first = holding(await gate.enter(fakeJob('j1', 'a')));
  proxy.clear();

  // The second entry's acquire is written before the first leaves; its answer comes after.
  const asking = gate.enter(fakeJob('j1', 'a'));
  first.leave();
  const second = holding(await asking);

  t.deepEqual(writes(), [[`script ${slots('a')} j1`]], 'no release written after the new acquire');
  await gate.enter(fakeJob('k1', 'b'));
  t.deepEqual(writes().at(-1), [`script ${slots('b')} k1`], 'and none queued');
  t.deepEqual(await members('a'), ['j1'], 'the second entry keeps the slot');
  t.regex(await registry.metrics(), /worker_fair_slots_held 2\b/, 'j1 (second entry) and k1');
  second.leave();
  await freed('a', 'j1');
  t.deepEqual(writes().at(-1), [`zrem ${slots('a')} j1`]);
  t.regex(await registry.metrics(), /worker_fair_slots_held 1\b/);
});
