import test from 'ava';
import { createBatcher, type BatcherOptions } from '#common';

/** A store whose writes the test finishes by hand: every batch `run` got, each with its own release. */
function heldStore<I>() {
  const batches: Array<{ items: I[]; finish: (outcomes?: Array<string | Error>) => void; fail: (err: Error) => void }> =
    [];
  const run = (items: readonly I[]) =>
    new Promise<ReadonlyArray<string | Error>>((resolve, reject) => {
      batches.push({
        items: [...items],
        finish: (outcomes) => resolve(outcomes ?? items.map((i) => `stored ${String(i)}`)),
        fail: reject,
      });
    });
  return { batches, run };
}

class Overloaded extends Error {}
class TimedOut extends Error {}

function batcher<I>(
  run: BatcherOptions<I, string>['run'],
  options: Partial<Omit<BatcherOptions<I, string>, 'run'>> = {},
) {
  const sizes: number[] = [];
  const b = createBatcher<I, string>({
    run,
    maxBatch: 100,
    maxWaiting: 1000,
    deadlineMs: 60_000,
    overloaded: (waiting) => new Overloaded(`${waiting} waiting`),
    timedOut: (ms) => new TimedOut(`${ms} ms`),
    onBatch: (size) => sizes.push(size),
    ...options,
  });
  return Object.assign(b, { sizes });
}

/** Lets every queued promise callback run (the batcher starts the next batch in a `finally`). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

test('when one item is submitted to an idle batcher, then it is written at once, alone, with no timer', async (t) => {
  const store = heldStore<string>();
  const b = batcher(store.run);

  const answer = b.submit('a');

  t.is(store.batches.length, 1, 'written synchronously, before any timer or tick');
  t.deepEqual(store.batches[0].items, ['a']);
  store.batches[0].finish();
  t.is(await answer, 'stored a');
});

test('when items arrive while a batch is written, then they wait and go out together as the next batch', async (t) => {
  const store = heldStore<string>();
  const b = batcher(store.run);
  const first = b.submit('a');
  const later = ['b', 'c', 'd'].map((i) => b.submit(i));

  t.is(store.batches.length, 1, 'nothing more is written while the first batch is in flight');
  t.deepEqual(b.load, { waiting: 3, inFlight: 1 });
  store.batches[0].finish();
  await first;
  await settle();

  t.is(store.batches.length, 2);
  t.deepEqual(store.batches[1].items, ['b', 'c', 'd']);
  store.batches[1].finish();
  t.deepEqual(await Promise.all(later), ['stored b', 'stored c', 'stored d']);
  t.deepEqual(b.sizes, [1, 3]);
});

test('when more items wait than maxBatch, then they go out in batches of at most maxBatch, in arrival order', async (t) => {
  const store = heldStore<number>();
  const b = batcher(store.run, { maxBatch: 2 });
  const all = [0, 1, 2, 3, 4].map((i) => b.submit(i));

  for (let n = 1; n <= 3; n += 1) {
    store.batches[n - 1].finish();
    await settle();
  }

  t.deepEqual(
    store.batches.map((x) => x.items),
    [[0], [1, 2], [3, 4]],
  );
  t.is((await Promise.all(all)).length, 5);
});

test('when the store answers each item differently, then each caller gets its own outcome', async (t) => {
  const store = heldStore<string>();
  const b = batcher(store.run);
  const blocker = b.submit('x');
  const [ok1, bad, ok2] = ['a', 'b', 'c'].map((i) => b.submit(i));
  store.batches[0].finish();
  await blocker;
  await settle();

  store.batches[1].finish(['A', new Error('b refused'), 'C']);

  t.is(await ok1, 'A');
  await t.throwsAsync(bad, { message: 'b refused' });
  t.is(await ok2, 'C');
});

test('when a batch fails as a whole, then every item of that batch gets the error and the next batch is unaffected', async (t) => {
  const store = heldStore<string>();
  const b = batcher(store.run, { maxBatch: 2 });
  const first = b.submit('a');
  const second = ['b', 'c'].map((i) => b.submit(i));
  const third = b.submit('d');
  store.batches[0].finish();
  await first;
  await settle();

  store.batches[1].fail(new Error('connection lost'));
  for (const p of second) await t.throwsAsync(p, { message: 'connection lost' });
  await settle();
  store.batches[2].finish();

  t.is(await third, 'stored d');
});

test('when maxWaiting items already wait, then one more is refused at once and is never written', async (t) => {
  const store = heldStore<string>();
  const b = batcher(store.run, { maxWaiting: 2 });
  const first = b.submit('a');
  const waiting = ['b', 'c'].map((i) => b.submit(i));

  await t.throwsAsync(b.submit('d'), { instanceOf: Overloaded, message: '2 waiting' });

  store.batches[0].finish();
  await first;
  await settle();
  t.deepEqual(store.batches[1].items, ['b', 'c'], 'the refused item was never queued');
  store.batches[1].finish();
  await Promise.all(waiting);
  t.deepEqual(b.load, { waiting: 0, inFlight: 0 });
});

test('when the store freezes, then waiting and in-flight items are all settled by their deadline, and a timed-out waiter is never written', async (t) => {
  const store = heldStore<string>();
  const b = batcher(store.run, { deadlineMs: 30 });
  const inFlight = b.submit('a');
  const waiting = b.submit('b');

  await t.throwsAsync(inFlight, { instanceOf: TimedOut, message: '30 ms' });
  await t.throwsAsync(waiting, { instanceOf: TimedOut });
  t.deepEqual(b.load, { waiting: 0, inFlight: 1 }, 'the frozen batch still counts as in flight');

  // The store comes back: the late answer of the frozen batch changes nothing, and the timed-out
  // waiter is not written after the fact.
  store.batches[0].finish();
  await settle();
  t.is(store.batches.length, 1);
  t.deepEqual(b.load, { waiting: 0, inFlight: 0 });
  const after = b.submit('c');
  store.batches[1].finish();
  t.is(await after, 'stored c');
});

test('when concurrency is 2, then a second batch starts while the first is in flight', async (t) => {
  const store = heldStore<string>();
  const b = batcher(store.run, { concurrency: 2 });
  const answers = ['a', 'b', 'c', 'd'].map((i) => b.submit(i));

  t.deepEqual(
    store.batches.map((x) => x.items),
    [['a'], ['b']],
  );
  store.batches[1].finish();
  await settle();
  t.deepEqual(store.batches[2].items, ['c', 'd']);
  store.batches[0].finish();
  store.batches[2].finish();
  t.is((await Promise.all(answers)).length, 4);
});

test('when drain is called, then it resolves only once nothing waits and no batch is in flight', async (t) => {
  const store = heldStore<string>();
  const b = batcher(store.run);
  const answers = ['a', 'b'].map((i) => b.submit(i));
  let drained = false;
  const draining = b.drain().then(() => {
    drained = true;
  });

  store.batches[0].finish();
  await settle();
  t.false(drained, 'b is still to be written');
  store.batches[1].finish();
  await draining;
  await Promise.all(answers);
  t.true(drained);
  await t.notThrowsAsync(b.drain());
});

test('when the bounds are impossible, then the batcher refuses to be built', (t) => {
  const store = heldStore<string>();
  t.throws(() => batcher(store.run, { maxBatch: 0 }), { instanceOf: RangeError });
  t.throws(() => batcher(store.run, { deadlineMs: 0 }), { instanceOf: RangeError });
});

test('when gatherTurn is set and items arrive in one turn of the event loop, then an idle batcher writes them together at its end', async (t) => {
  const store = heldStore<string>();
  const b = batcher(store.run, { gatherTurn: true });

  // As the callers woken by one batch's answers submit: a few microtasks apart, in one turn.
  const answers = [b.submit('a'), Promise.resolve().then(() => b.submit('b')), queueMicrotaskSubmit(b, 'c')];
  t.is(store.batches.length, 0, 'nothing is written inside submit');
  await settle();

  t.is(store.batches.length, 1);
  t.deepEqual(store.batches[0].items, ['a', 'b', 'c']);
  store.batches[0].finish();
  t.deepEqual(await Promise.all(answers), ['stored a', 'stored b', 'stored c']);

  // A lone item later is written at the end of its own turn, with no timer.
  const lone = b.submit('d');
  await settle();
  t.deepEqual(store.batches[1].items, ['d']);
  store.batches[1].finish();
  t.is(await lone, 'stored d');
});

function queueMicrotaskSubmit(b: { submit(item: string): Promise<string> }, item: string): Promise<string> {
  return new Promise((resolve, reject) => queueMicrotask(() => b.submit(item).then(resolve, reject)));
}
