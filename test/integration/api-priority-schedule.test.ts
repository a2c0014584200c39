import test from 'ava';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { call, jobsOfOrder, postOrder, validOrder } from '../helpers/api-http.js';

/** POST /orders with `priority` and `notBefore`: stored, shown in the order view, placed in the queue. */

let api: TestApi;
test.before(async () => {
  api = await startTestApi('api_priority');
});
test.after.always(async () => {
  await api?.close();
});

interface View {
  id: string;
  status: string;
  priority: string;
  scheduledFor: string | null;
}

test.serial(
  'when an order is posted without priority or notBefore, then it is standard, unscheduled, and waits FIFO',
  async (t) => {
    const res = await postOrder(api);
    t.is(res.status, 201);
    const body = res.body as unknown as View;
    t.is(body.priority, 'standard');
    t.is(body.scheduledFor, null);
    const [job] = await jobsOfOrder(api, body.id);
    t.is(await job.getState(), 'waiting');
    t.is(job.opts.priority ?? 0, 0);
    t.falsy(job.opts.lifo);
    t.is(job.data.customerId, validOrder().customerId as string, 'the job carries the customer for the fair share');
  },
);

test.serial('when an express order is posted, then it goes to the head of the wait list', async (t) => {
  const standard = (await postOrder(api)).body as unknown as View;
  const res = await postOrder(api, validOrder({ priority: 'express' }));
  t.is(res.status, 201);
  const express = res.body as unknown as View;
  t.is(express.priority, 'express');
  const [job] = await jobsOfOrder(api, express.id);
  t.true(job.opts.lifo, 'lifo: served before the standard backlog');
  // Workers take from the right end of the wait list (RPOPLPUSH): the express job is there, the standard
  // backlog behind it.
  const ids = await api.container.redis.lrange(api.container.queue.toKey('wait'), 0, -1);
  t.is(ids.at(-1), express.id, `served next: ${ids.join(', ')}`);
  t.true(ids.includes(standard.id));
  const fetched = await call<View>(api, 'GET', `/orders/${express.id}`);
  t.is(fetched.body.priority, 'express', 'GET /orders/:id shows the priority');
});

test.serial(
  'when a bulk order is posted, then it gets a BullMQ priority (runs after standard and express)',
  async (t) => {
    const res = await postOrder(api, validOrder({ priority: 'bulk' }));
    t.is(res.status, 201);
    const [job] = await jobsOfOrder(api, (res.body as unknown as View).id);
    t.is(await job.getState(), 'prioritized');
    t.is(job.opts.priority, 1);
  },
);

test.serial(
  'when an order is scheduled, then it stays PENDING with scheduledFor and its job is delayed until then',
  async (t) => {
    const notBefore = new Date(Date.now() + 3_600_000).toISOString();
    const res = await postOrder(api, validOrder({ notBefore, priority: 'express' }));
    t.is(res.status, 201, res.text);
    const body = res.body as unknown as View;
    t.is(body.status, 'PENDING');
    t.is(body.scheduledFor, notBefore);
    const [job] = await jobsOfOrder(api, body.id);
    t.is(await job.getState(), 'delayed');
    const dueAt = job.timestamp + (job.opts.delay ?? 0);
    t.true(Math.abs(dueAt - Date.parse(notBefore)) < 1000, `due at ${new Date(dueAt).toISOString()}`);
    const fetched = await call<View>(api, 'GET', `/orders/${body.id}`);
    t.is(fetched.body.scheduledFor, notBefore);
    t.is(fetched.body.status, 'PENDING');
  },
);

test.serial(
  'when notBefore lies a few seconds in the past (clock skew), then the order is taken and runs at once',
  async (t) => {
    const notBefore = new Date(Date.now() - 5000).toISOString();
    const res = await postOrder(api, validOrder({ notBefore }));
    t.is(res.status, 201, res.text);
    const [job] = await jobsOfOrder(api, (res.body as unknown as View).id);
    t.is(await job.getState(), 'waiting');
    t.falsy(job.opts.delay);
  },
);
