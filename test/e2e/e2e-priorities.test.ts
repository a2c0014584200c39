import test from 'ava';
import type { OrderView } from '#common';
import { orderBody, requestJson, startTestFleet, waitFor } from '../helpers/fleet.js';

/** Priorities and schedules through the real processes: one worker, one job at a time, a backlog. */

const BACKLOG = 20;

async function post(apiUrl: string, extra: Record<string, unknown>, n: number): Promise<OrderView> {
  const res = await requestJson<OrderView>(`${apiUrl}/orders`, { method: 'POST', body: { ...orderBody(n), ...extra } });
  if (res.status !== 201) throw new Error(`POST /orders: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function get(apiUrl: string, id: string): Promise<OrderView> {
  return (await requestJson<OrderView>(`${apiUrl}/orders/${id}`)).body;
}

test.serial(
  'when an express and a bulk order join a standard backlog, then express overtakes it and bulk runs after it; a scheduled order waits for its time',
  async (t) => {
    const fleet = await startTestFleet(t, {
      label: 'e2e_prio',
      workers: 1,
      health: false,
      env: { WORKER_CONCURRENCY: '1', PROCESSING_DELAY_MS: '400', FAIR_SHARE_KEY: 'off' },
    });
    const notBefore = new Date(Date.now() + 4000).toISOString();
    const scheduled = await post(fleet.apiUrl, { notBefore }, 999);
    t.is(scheduled.status, 'PENDING');
    t.is(scheduled.scheduledFor, notBefore);

    const standard: OrderView[] = [];
    // Five at a time: a backlog builds up fast even on a loaded machine (one job at a time, 400 ms each).
    for (let n = 0; n < BACKLOG; n += 5) {
      standard.push(...(await Promise.all([0, 1, 2, 3, 4].map((i) => post(fleet.apiUrl, {}, n + i)))));
    }
    const bulk = await post(fleet.apiUrl, { priority: 'bulk' }, 100);
    const express = await post(fleet.apiUrl, { priority: 'express' }, 101);
    t.is(express.priority, 'express');
    t.is(bulk.priority, 'bulk');

    const all = [scheduled, ...standard, bulk, express];
    const done = await waitFor(
      'every order PROCESSED',
      async () => {
        const views = await Promise.all(all.map((o) => get(fleet.apiUrl, o.id)));
        return views.every((v) => v.status === 'PROCESSED') ? views : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    const at = new Map(done.map((v) => [v.id, Date.parse(v.processedAt ?? '')]));
    const standardTimes = standard.map((o) => at.get(o.id) ?? 0);
    const expressAt = at.get(express.id) ?? 0;
    const bulkAt = at.get(bulk.id) ?? 0;
    const standardAfterExpress = standardTimes.filter((ms) => ms > expressAt).length;
    t.true(standardAfterExpress > 0, 'the express order, posted after the backlog, did not wait for all of it');
    t.true(
      standardTimes.every((ms) => ms < bulkAt),
      'the bulk order, posted before the express one, ran after the whole standard backlog',
    );
    t.true((at.get(scheduled.id) ?? 0) >= Date.parse(notBefore), 'the scheduled order ran no earlier than notBefore');
    const view = done.find((v) => v.id === scheduled.id);
    t.is(view?.scheduledFor, notBefore, 'the view keeps scheduledFor once processed');
    t.log(`standard orders processed after the express one: ${standardAfterExpress} of ${BACKLOG}`);
  },
);
