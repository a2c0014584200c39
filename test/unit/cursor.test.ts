import test, { type ExecutionContext } from 'ava';
import { AppError, randomOrderId } from '#common';
import { dlqCursor, orderCursor } from '../../api/http/cursor.js';

const { decode: decodeCursor, encode: encodeCursor } = orderCursor;

const ID = 'ord_0123456789abcdef0123456789abcdef';

/** A cursor string made the way encodeCursor makes one, but from any JSON value. */
function rawCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function assertBadCursor(t: ExecutionContext, raw: string): void {
  const error = t.throws(() => decodeCursor(raw), { instanceOf: AppError }, JSON.stringify(raw));
  t.is(error.code, 'VALIDATION_ERROR');
  t.deepEqual(
    error.details.map((d) => d.field),
    ['cursor'],
  );
}

test('when a cursor is encoded and decoded, then the same position comes back', (t) => {
  const cursor = { createdAt: new Date('2026-03-01T12:34:56.789Z'), id: ID };

  const decoded = decodeCursor(encodeCursor(cursor));

  t.is(decoded.id, ID);
  t.true(decoded.createdAt instanceof Date);
  t.is(decoded.createdAt.getTime(), cursor.createdAt.getTime());
});

test('when many random positions round-trip, then each comes back exactly', (t) => {
  for (let i = 0; i < 200; i += 1) {
    const cursor = { createdAt: new Date(Date.UTC(2020, 0, 1) + i * 987_654_321), id: randomOrderId() };

    const decoded = decodeCursor(encodeCursor(cursor));

    t.deepEqual(decoded, cursor);
  }
});

test('when a cursor is encoded, then it is opaque url-safe text that passes the query schema charset', (t) => {
  const raw = encodeCursor({ createdAt: new Date('2026-03-01T00:00:00Z'), id: ID });

  t.regex(raw, /^[A-Za-z0-9_-]{1,200}$/);
  t.false(raw.includes(ID), 'the id is not readable in the cursor');
});

test('when the epoch itself is the position, then it round-trips', (t) => {
  const cursor = { createdAt: new Date(0), id: ID };

  t.deepEqual(decodeCursor(encodeCursor(cursor)), cursor);
});

test('when the cursor is garbage, then it is a VALIDATION_ERROR on field cursor', (t) => {
  for (const raw of ['', 'garbage', '!!!!', 'eyJ', 'W10', Buffer.from('not json').toString('base64url')]) {
    assertBadCursor(t, raw);
  }
});

test('when the cursor decodes to the wrong shape, then it is a VALIDATION_ERROR on field cursor', (t) => {
  const now = Date.now();
  for (const value of [
    null,
    42,
    'ord',
    {},
    { createdAt: now, id: ID },
    [],
    [now],
    [now, ID, 'extra'],
    [ID, now],
    [String(now), ID],
    [now + 0.5, ID],
    [null, ID],
    [now, null],
    [now, 42],
    [now, [ID]],
  ]) {
    assertBadCursor(t, rawCursor(value));
  }
});

test('when the cursor id is not an order id, then it is a VALIDATION_ERROR on field cursor', (t) => {
  const now = Date.now();
  for (const id of [
    '',
    'ord_',
    ID.toUpperCase(),
    `${ID}0`,
    ID.slice(0, -1),
    ID.replace('ord_', 'usr_'),
    `${ID}\n`,
    '{"$gt":""}',
  ]) {
    assertBadCursor(t, rawCursor([now, id]));
  }
});

test('when the cursor id is an operator object, then it is a VALIDATION_ERROR on field cursor', (t) => {
  assertBadCursor(t, rawCursor([Date.now(), { $gt: '' }]));
});

// decodeCursor accepts any safe integer, but Date only holds ±8.64e15 ms: [9007199254740991, id]
// decodes to an Invalid Date, which mongoose rejects with a CastError (a 500) instead of a 400.
test('when the cursor timestamp is beyond the range of Date, then it is a VALIDATION_ERROR', (t) => {
  assertBadCursor(t, rawCursor([Number.MAX_SAFE_INTEGER, ID]));
  assertBadCursor(t, rawCursor([8.64e15 + 1, ID]));
});

test('when a dead-letter position is encoded and decoded, then it comes back under failedAt', (t) => {
  const position = { failedAt: new Date('2026-03-01T12:34:56.789Z'), id: ID };

  const decoded = dlqCursor.decode(dlqCursor.encode(position));

  t.deepEqual(decoded, position);
  t.false('createdAt' in decoded, 'a dead-letter cursor carries no createdAt');
});

test('when a dead-letter cursor is garbage, then it is a VALIDATION_ERROR on field cursor', (t) => {
  const error = t.throws(() => dlqCursor.decode('garbage'), { instanceOf: AppError });
  t.is(error.code, 'VALIDATION_ERROR');
  t.deepEqual(
    error.details.map((d) => d.field),
    ['cursor'],
  );
});
