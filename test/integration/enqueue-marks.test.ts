import { Writable } from 'node:stream';
import test from 'ava';
import { createLogger, type OrderModels } from '#common';
import { createEnqueueMarks } from '../../api/repositories/enqueue-marks.js';
import { createOrderRepository, type OrderRepository } from '../../api/repositories/order-repository.js';
import { storedOrder } from '../helpers/orders.js';
import { openTestMongo, type TestMongo } from '../helpers/mongo.js';

/**
 * The api records `enqueuedAt` (the outbox's last step) behind the reply, batched: these tests run the
 * batcher against a real MongoDB and count the writes it makes.
 */

let db: TestMongo;
let models: OrderModels;
let repository: OrderRepository;

test.before(async () => {
  db = await openTestMongo('enqueue_marks');
  models = db.models;
  repository = createOrderRepository({ models });
});

test.after.always(async () => {
  await db?.close();
});

function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      callback();
    },
  });
  return { lines, logger: createLogger({ service: 'test', level: 'info', destination }) };
}

/** Marks that write for real and note the size of every command they send. */
function countingMarks(options: { windowMs?: number; maxBatch?: number }) {
  const writes: number[] = [];
  const marks = createEnqueueMarks({
    write: async (batch, at) => {
      writes.push(batch.length);
      await repository.markEnqueued(batch, at);
    },
    logger: capturedLogger().logger,
    ...options,
  });
  return { marks, writes };
}

async function unqueuedOrders(count: number): Promise<string[]> {
  const docs = Array.from({ length: count }, () => storedOrder('PENDING', { enqueuedAt: null }, new Date()));
  await models.Order.collection.insertMany(docs as never[]);
  return docs.map((d) => d._id);
}

async function enqueuedAtOf(ids: readonly string[]): Promise<(Date | null)[]> {
  const docs = await models.Order.collection.find({ _id: { $in: [...ids] } } as never).toArray();
  const byId = new Map(docs.map((d) => [String(d._id), (d.enqueuedAt as Date | null) ?? null]));
  return ids.map((id) => byId.get(id) ?? null);
}

test('when 200 orders are marked within one window, then few updateMany commands mark them all', async (t) => {
  const ids = await unqueuedOrders(200);
  const { marks, writes } = countingMarks({ windowMs: 20, maxBatch: 500 });

  for (const id of ids) marks.record(id);
  t.deepEqual(writes, [], 'record() returns before anything is written');
  await marks.drain();

  t.deepEqual(writes, [200], 'one command for the whole window');
  t.true((await enqueuedAtOf(ids)).every((at) => at instanceof Date));
});

test('when more orders than maxBatch are marked, then each command carries at most maxBatch ids', async (t) => {
  const ids = await unqueuedOrders(120);
  const { marks, writes } = countingMarks({ maxBatch: 50 });

  for (const id of ids) marks.record(id);
  await marks.drain();

  t.deepEqual(writes, [50, 50, 20]);
  t.true((await enqueuedAtOf(ids)).every((at) => at instanceof Date));
});

test('when an order is already marked, then a later mark leaves its enqueuedAt as it was', async (t) => {
  const [id] = await unqueuedOrders(1);
  const first = new Date('2026-01-01T00:00:00Z');
  await repository.markEnqueued([id], first);
  const marks = createEnqueueMarks({ write: repository.markEnqueued, logger: capturedLogger().logger });

  marks.record(id);
  await marks.drain();

  t.deepEqual(await enqueuedAtOf([id]), [first]);
});

test('when the write fails, then record() does not throw, drain() resolves and one warning names the batch', async (t) => {
  const ids = await unqueuedOrders(3);
  const { lines, logger } = capturedLogger();
  const marks = createEnqueueMarks({
    write: () => Promise.reject(new Error('MongoDB is away')),
    logger,
  });

  for (const id of ids) t.notThrows(() => marks.record(id));
  await marks.drain();

  const warnings = lines.filter((l) => l.level === 'warn');
  t.is(warnings.length, 1, JSON.stringify(lines));
  t.is(warnings[0].orders, 3);
  t.regex(String(warnings[0].msg), /reconciler/);
  t.deepEqual(await enqueuedAtOf(ids), [null, null, null], 'left for the reconciler');
});

test('when marks are recorded while a batch is being written, then drain() waits for both batches', async (t) => {
  const [a, b] = await unqueuedOrders(2);
  let calls = 0;
  let firstStarted: () => void = () => undefined;
  let releaseFirst: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (firstStarted = resolve));
  const released = new Promise<void>((resolve) => (releaseFirst = resolve));
  const marks = createEnqueueMarks({
    write: async (batch, at) => {
      calls += 1;
      if (calls === 1) {
        firstStarted();
        await released;
      }
      await repository.markEnqueued(batch, at);
    },
    logger: capturedLogger().logger,
    windowMs: 1,
  });

  marks.record(a);
  await started;
  marks.record(b);
  let drained = false;
  const draining = marks.drain().then(() => (drained = true));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.false(drained, 'drain() waits for the batch still being written');
  releaseFirst();
  await draining;

  t.is(calls, 2);
  t.true((await enqueuedAtOf([a, b])).every((at) => at instanceof Date));
});
