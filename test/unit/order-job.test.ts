import test from 'ava';
import { JOB_PLACEMENT, notBeforeProblem, orderJob, type Order } from '#common';

/** The one derivation of an order's job options (api enqueue, reconciler re-add, DLQ revive). */

const base: Pick<Order, 'id' | 'correlationId' | 'customerId' | 'priority' | 'notBefore'> = {
  id: 'ord_1',
  correlationId: 'req-1',
  customerId: 'cust-1',
  priority: 'standard',
  notBefore: null,
};
const now = new Date('2026-01-01T12:00:00Z');

test('when a standard order is derived, then its job id is the order id, with no priority and no delay', (t) => {
  const job = orderJob(base, { now });
  t.is(job.name, 'process-order');
  t.deepEqual(job.data, { orderId: 'ord_1', correlationId: 'req-1', customerId: 'cust-1' });
  t.deepEqual(job.opts, { jobId: 'ord_1' });
});

test('when the priority class varies, then express is lifo and bulk gets a BullMQ priority', (t) => {
  t.deepEqual(orderJob({ ...base, priority: 'express' }, { now }).opts, { jobId: 'ord_1', lifo: true });
  t.deepEqual(orderJob({ ...base, priority: 'bulk' }, { now }).opts, { jobId: 'ord_1', priority: 1 });
  t.deepEqual(Object.keys(JOB_PLACEMENT), ['express', 'standard', 'bulk']);
});

test('when a scheduled order is derived again later (re-add, revive), then only what is left of its delay remains', (t) => {
  const order = { ...base, priority: 'bulk' as const, notBefore: new Date('2026-01-01T13:00:00Z') };
  t.is(orderJob(order, { now }).opts.delay, 3_600_000);
  const later = orderJob(order, { now: new Date('2026-01-01T12:59:00Z') });
  t.is(later.opts.delay, 60_000);
  t.is(later.opts.priority, 1, 'the re-added job keeps its class');
  t.is(orderJob(order, { now: new Date('2026-01-01T14:00:00Z') }).opts.delay, undefined, 'due: no delay');
});

test('when the trace context is given, then it rides in the job data', (t) => {
  t.deepEqual(orderJob(base, { now, trace: { traceparent: 'tp' } }).data.trace, { traceparent: 'tp' });
});

test('when notBefore is checked, then up to 60 s past and up to 30 days ahead are accepted', (t) => {
  t.is(notBeforeProblem(new Date(now.getTime() - 59_000), now), null);
  t.regex(notBeforeProblem(new Date(now.getTime() - 61_000), now) ?? '', /past/);
  t.is(notBeforeProblem(new Date(now.getTime() + 30 * 86_400_000), now), null);
  t.regex(notBeforeProblem(new Date(now.getTime() + 30 * 86_400_000 + 1), now) ?? '', /30 days/);
  t.regex(notBeforeProblem(new Date('nope'), now) ?? '', /ISO/);
});
