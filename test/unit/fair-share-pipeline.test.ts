import test from 'ava';
import type { RedisClient } from '#common';
import { createFairShareStore } from '../../worker/fairness/fair-share.js';

/** How the store reads a pipeline's replies, each command on its own (a fake client: no Redis). */

type Reply = [Error | null, unknown];

function fakeRedis(exec: () => Promise<Reply[] | null>) {
  const sent: string[] = [];
  let pipelines = 0;
  const pipeline = {
    zrem(key: string, member: string) {
      sent.push(`zrem ${key} ${member}`);
      return pipeline;
    },
    fairAcquire(slots: string, _pacing: string, jobId: string) {
      sent.push(`acquire ${slots} ${jobId}`);
      return pipeline;
    },
    exec,
  };
  // `fairAcquire` present: the store defines no command on the fake.
  const redis = {
    fairAcquire: () => undefined,
    pipeline: () => {
      pipelines += 1;
      return pipeline;
    },
  };
  return { redis: redis as unknown as RedisClient, sent, pipelines: () => pipelines };
}

const request = { customerId: 'a', jobId: 'j2', options: { leaseMs: 1000, maxActive: 1, spacingMs: 10 } };
const releases = [
  { customerId: 'a', jobId: 'j1' },
  { customerId: 'b', jobId: 'k1' },
];

test('when a release fails and the acquire answers, then each keeps its own reply', async (t) => {
  const wrongType = new Error('WRONGTYPE');
  const { redis, sent } = fakeRedis(async () => [
    [wrongType, null],
    [null, 1],
    [null, 0],
  ]);
  const store = createFairShareStore(redis, 'p');

  const replies = await store.releaseThenAcquire(releases, request);

  t.deepEqual(sent, ['zrem p:orders:fair:a j1', 'zrem p:orders:fair:b k1', 'acquire p:orders:fair:a j2']);
  t.deepEqual(replies, { released: [wrongType, undefined], acquired: { waitMs: 0 } });
});

test('when the acquire fails after releases that ran, then only the acquire reports the error', async (t) => {
  const noScript = new Error('NOSCRIPT');
  const { redis } = fakeRedis(async () => [
    [null, 1],
    [null, 0],
    [noScript, null],
  ]);

  const replies = await createFairShareStore(redis, 'p').releaseThenAcquire(releases, request);

  t.deepEqual(replies, { released: [undefined, undefined], acquired: { err: noScript } });
});

test('when the pipeline cannot be sent at all, then every command reports that error', async (t) => {
  const crossSlot = new Error('All keys in the pipeline should belong to the same slots allocation group');
  const { redis } = fakeRedis(() => Promise.reject(crossSlot));

  const replies = await createFairShareStore(redis, 'p').releaseThenAcquire(releases, request);

  t.deepEqual(replies, { released: [crossSlot, crossSlot], acquired: { err: crossSlot } });
});

test('when there is nothing to release or acquire, then no pipeline is made', async (t) => {
  const { redis, pipelines } = fakeRedis(async () => []);

  t.deepEqual(await createFairShareStore(redis, 'p').releaseThenAcquire([]), { released: [] });
  t.is(pipelines(), 0);
});
