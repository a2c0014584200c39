import test from 'ava';
import { ORDER_STATUSES, TRANSITIONS, buildTransition, canTransition, sourcesOf, type OrderStatus } from '#common';

const LEGAL: ReadonlyArray<[OrderStatus, OrderStatus]> = [
  ['PENDING', 'PROCESSING'],
  ['FAILED', 'PROCESSING'],
  ['PROCESSING', 'PROCESSING'],
  ['PROCESSING', 'PROCESSED'],
  ['PROCESSING', 'PENDING'],
  ['PROCESSING', 'FAILED'],
  ['PROCESSING', 'REJECTED'],
  ['FAILED', 'PENDING'],
  ['PENDING', 'CANCELLED'],
  ['FAILED', 'CANCELLED'],
];

test('when every pair of states is checked, then exactly the transitions of docs/design.md are legal', (t) => {
  for (const from of ORDER_STATUSES) {
    for (const to of ORDER_STATUSES) {
      const expected = LEGAL.some(([f, s]) => f === from && s === to);
      t.is(canTransition(from, to), expected, `${from} -> ${to}`);
    }
  }
  const count = Object.values(TRANSITIONS).reduce((n, targets) => n + targets.length, 0);
  t.is(count, LEGAL.length);
});

test('when a transition from an illegal source is built, then it throws', (t) => {
  for (const from of ORDER_STATUSES) {
    for (const to of ORDER_STATUSES) {
      if (canTransition(from, to)) t.notThrows(() => buildTransition({ to, from: [from] }));
      else t.throws(() => buildTransition({ to, from: [from] }), { message: /illegal transition/ });
    }
  }
});

test('when a terminal state is the target source list, then no move leaves it', (t) => {
  t.deepEqual(TRANSITIONS.PROCESSED, []);
  t.deepEqual(TRANSITIONS.CANCELLED, []);
  t.throws(() => buildTransition({ to: 'PENDING', from: ['PROCESSED'] }));
});

test('when a claim is built, then it increments attempts and records the attempt in history', (t) => {
  const at = new Date('2026-01-01T00:00:00Z');
  const spec = buildTransition({ to: 'PROCESSING', jobAttempt: 2, at });
  t.deepEqual(spec.filter, { status: { $in: sourcesOf('PROCESSING') } });
  t.deepEqual(spec.update.$inc, { attempts: 1 });
  const push = spec.update.$push as { history: { $each: unknown[]; $slice: number } };
  t.deepEqual(push.history.$each, [{ status: 'PROCESSING', at, attempt: 2 }]);
  t.true(push.history.$slice < 0, 'history is bounded, newest kept');
});

test('when an order reaches PROCESSED or FAILED, then the matching timestamp is set', (t) => {
  const at = new Date();
  t.is((buildTransition({ to: 'PROCESSED', at }).update.$set as Record<string, unknown>).processedAt, at);
  t.is((buildTransition({ to: 'FAILED', at }).update.$set as Record<string, unknown>).failedAt, at);
  t.false('$inc' in buildTransition({ to: 'PENDING', from: ['PROCESSING'] }).update);
});

test('when a reason is very long, then history keeps a truncated copy', (t) => {
  const spec = buildTransition({ to: 'PENDING', from: ['PROCESSING'], reason: 'x'.repeat(5000) });
  const entry = (spec.update.$push as { history: { $each: Array<{ reason: string }> } }).history.$each[0];
  t.true(entry.reason.length <= 500);
});
