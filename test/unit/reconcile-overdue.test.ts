import test from 'ava';
import { tickOverdue } from '../../worker/reconcile-schedule.js';

const base = { nextDueAt: 100_000, active: 0, paused: false, stuckAfterMs: 30_000 };

test('when the due tick has waited longer than the bound with none running, then it is overdue', (t) => {
  t.true(tickOverdue({ ...base, now: 130_001 }));
  t.false(tickOverdue({ ...base, now: 130_000 }), 'not before the bound');
  t.false(tickOverdue({ ...base, now: 90_000 }), 'not before it is due');
});

test('when a tick is running, the queue is paused or there is no schedule, then nothing is overdue', (t) => {
  t.false(
    tickOverdue({ ...base, now: 500_000, active: 1 }),
    'a running tick holds the only slot (the stalled check frees it)',
  );
  t.false(tickOverdue({ ...base, now: 500_000, paused: true }), 'an operator paused the queue');
  t.false(
    tickOverdue({ ...base, now: 500_000, nextDueAt: undefined }),
    'the schedule is gone (its upsert brings it back)',
  );
});
