import test from 'ava';
import type { Collection } from 'mongoose';
import { bulkWriteErrors } from '#common';
import { batchedOrderUpdates } from '../../worker/repositories/order-updates.js';

/** What the driver throws when an unordered bulk command fails (the fields the code reads). */
function bulkError(writeErrors: unknown, message = 'bulk write failed') {
  return Object.assign(new Error(message), { name: 'MongoBulkWriteError', writeErrors, result: { upsertedIds: {} } });
}

test('when a bulk command fails, then its per-operation errors are read by index; a whole failure has none', (t) => {
  t.is(bulkWriteErrors(new Error('socket closed')), undefined, 'not a bulk write error');
  t.deepEqual([...(bulkWriteErrors(bulkError({ index: 2, code: 11000 })) ?? [])], [[2, { index: 2, code: 11000 }]]);
  t.deepEqual(
    [
      ...(
        bulkWriteErrors(
          bulkError([
            { index: 0, code: 11000 },
            { index: 3, code: 121, errmsg: 'invalid' },
          ]),
        ) ?? []
      ).keys(),
    ],
    [0, 3],
  );
  t.is(bulkWriteErrors(bulkError([]))?.size, 0, 'failed as a whole (write concern): no per-operation answer');
});

test('when a batch of order updates fails as a whole, then every update of it fails with that error, none is taken as applied', async (t) => {
  const concern = bulkError([], 'waiting for replication timed out');
  // A small fake: the unit under test is how the batch reads the driver's answer, not MongoDB.
  const collection = { bulkWrite: () => Promise.reject(concern) } as unknown as Collection;
  const updates = batchedOrderUpdates(collection, { deadlineMs: 1000 });
  const op = (id: string) => updates({ id, filter: { status: 'PROCESSING' }, update: { $set: { x: 1 } } });

  const outcomes = await Promise.allSettled([op('a'), op('b')]);

  t.deepEqual(
    outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).message : o.status)),
    ['waiting for replication timed out', 'waiting for replication timed out'],
  );
});
