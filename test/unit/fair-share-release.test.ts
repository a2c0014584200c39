import test from 'ava';
import type { RedisClient } from '#common';
import { createFairShareStore } from '../../worker/fairness/fair-share.js';

/** How the store reads the replies of releases and an acquire sent together, each on its own (a fake client: no Redis). */

type Reply = { error: Error } | { value: unknown };

/** A client whose commands answer, in the order sent, with `replies`; it records what was sent. */
function fakeRedis(replies: Reply[]) {
  const sent: string[] = [];
  const answer = () => {
    const reply = replies.shift() ?? { error: new Error('no reply scripted') };
    return 'error' in reply ? Promise.reject(reply.error) : Promise.resolve(reply.value);
  };
  // `fairAcquire` present: the store defines no command on the fake.
  const redis = {
    zrem(key: string, member: string) {
      sent.push(`zrem ${key} ${member}`);
      return answer();
    },
    fairAcquire(slots: string, _pacing: string, jobId: string) {
      sent.push(`acquire ${slots} ${jobId}`);
      return answer();
    },
  };
  return { redis: redis as unknown as RedisClient, sent };
}

const request = { customerId: 'a', jobId: 'j2', options: { leaseMs: 1000, maxActive: 1, spacingMs: 10 } };
const releases = [
  { customerId: 'a', jobId: 'j1' },
  { customerId: 'b', jobId: 'k1' },
];

test('when a release fails and the acquire answers, then each keeps its own reply, and the releases are sent first', async (t) => {
  const wrongType = new Error('WRONGTYPE');
  const { redis, sent } = fakeRedis([{ error: wrongType }, { value: 1 }, { value: 0 }]);
  const store = createFairShareStore(redis, 'p');

  const replies = await store.releaseThenAcquire(releases, request);

  t.deepEqual(sent, ['zrem p:orders:fair:a j1', 'zrem p:orders:fair:b k1', 'acquire p:orders:fair:a j2']);
  t.deepEqual(replies, { released: [wrongType, undefined], acquired: { waitMs: 0 } });
});

test('when the acquire fails after releases that ran, then only the acquire reports the error', async (t) => {
  const noScript = new Error('NOSCRIPT');
  const { redis } = fakeRedis([{ value: 1 }, { value: 0 }, { error: noScript }]);

  const replies = await createFairShareStore(redis, 'p').releaseThenAcquire(releases, request);

  t.deepEqual(replies, { released: [undefined, undefined], acquired: { err: noScript } });
});

test('when the acquire tells the job to wait, then its wait comes back as a number', async (t) => {
  const { redis } = fakeRedis([{ value: '25' }]);

  t.deepEqual(await createFairShareStore(redis, 'p').releaseThenAcquire([], request), {
    released: [],
    acquired: { waitMs: 25 },
  });
});

test('when there is nothing to release or acquire, then nothing is sent', async (t) => {
  const { redis, sent } = fakeRedis([]);

  t.deepEqual(await createFairShareStore(redis, 'p').releaseThenAcquire([]), { released: [] });
  t.deepEqual(sent, []);
});
