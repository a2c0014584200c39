import { randomBytes, randomUUID } from 'node:crypto';
import { computeTotalCents, fingerprint, randomOrderId, type OrderItem } from '#common';
import { formatStatuses, orderBody, pool, send, type Sample } from './load.js';
import { p99, pause, seconds, serverErrors, verifyOrders } from './measure.js';
import { runScenario } from './rig.js';
import type { Scenario } from './types.js';
import { jobCounts, jobsPresent, readOrders } from './verify.js';

export interface CrashBeforeEnqueueSizes {
  readonly orders: number;
  readonly workers: number;
  /** What the reconciler may take past one interval (its tick runs as a job; the machine is busy). */
  readonly toleranceMs: number;
  readonly settleTimeoutMs: number;
}

/**
 * #5: the api crashed between the insert and the enqueue. Simulated without touching the product:
 * the orders are written straight into MongoDB exactly as the api writes them (`enqueuedAt: null`)
 * and no job is ever added for them.
 */
export const crashBeforeEnqueue: Scenario<CrashBeforeEnqueueSizes> = {
  id: 5,
  title: 'api crash between insert and enqueue',
  fault: (s) => `${s.orders} orders inserted as the api does (enqueuedAt null), their jobs never added`,
  passLine: 'the reconciler enqueues each order within one interval after its grace period; each processed once',
  sizes: {
    full: { orders: 200, workers: 3, toleranceMs: 1000, settleTimeoutMs: 60_000 },
    quick: { orders: 20, workers: 2, toleranceMs: 1000, settleTimeoutMs: 60_000 },
  },
  run(ctx, s) {
    return runScenario(
      ctx,
      { id: this.id, title: this.title, fault: this.fault(s), passLine: this.passLine },
      { label: 's5', workers: s.workers },
      async (rig, out) => {
        const intervalMs = Number(rig.fleet.env.RECONCILE_INTERVAL_MS);
        const graceMs = Number(rig.fleet.env.RECONCILE_GRACE_MS);
        const at = new Date();
        const docs = Array.from({ length: s.orders }, (_, n) => {
          const body = orderBody(n) as { customerId: string; items: OrderItem[]; currency: string };
          return {
            _id: randomOrderId(),
            status: 'PENDING',
            clientId: 'public',
            customerId: body.customerId,
            items: body.items,
            totalCents: computeTotalCents(body.items),
            currency: body.currency,
            attempts: 0,
            lastError: null,
            history: [{ status: 'PENDING', at }],
            fingerprint: fingerprint(body),
            correlationId: randomUUID(),
            enqueuedAt: null,
            createdAt: at,
            updatedAt: at,
            processedAt: null,
            failedAt: null,
          };
        });
        const ids = docs.map((d) => d._id);
        await rig.db.collection<{ _id: string }>('orders').insertMany(docs);
        ctx.progress.log(`${s.orders} orders inserted with enqueuedAt null; no job added`);

        ctx.progress.phase('waiting for the reconciler', s.orders);
        const deadline = Date.now() + graceMs + 3 * intervalMs + s.toleranceMs + 30_000;
        let enqueued: Array<{ id: string; at: Date | null }> = [];
        while (Date.now() < deadline) {
          const orders = await readOrders(rig.db);
          enqueued = ids.map((id) => ({ id, at: orders.get(id)?.enqueuedAt ?? null }));
          const done = enqueued.filter((e) => e.at !== null).length;
          ctx.progress.update(done);
          if (done === ids.length) break;
          await pause(200, ctx.signal);
        }
        const delays = enqueued.filter((e) => e.at !== null).map((e) => e.at!.getTime() - at.getTime());
        const maxDelay = delays.length > 0 ? Math.max(...delays) : Number.NaN;
        const bound = graceMs + intervalMs + s.toleranceMs;
        out.summary.recoverMs = Number.isNaN(maxDelay) ? undefined : maxDelay;
        out.figure('reconcile interval / grace', `${intervalMs} / ${graceMs} ms`);
        out.figure('enqueued by the reconciler', `${delays.length} of ${ids.length}`);
        out.figure(
          'insert → enqueuedAt (min / max)',
          delays.length > 0 ? `${seconds(Math.min(...delays))} / ${seconds(maxDelay)}` : 'none',
        );
        out.check(
          'every order enqueued by the reconciler',
          delays.length === ids.length,
          `${delays.length}/${ids.length}`,
        );
        out.check(
          `enqueued within grace + one interval (+${s.toleranceMs} ms) = ${seconds(bound)}`,
          delays.length === ids.length && maxDelay <= bound,
          Number.isNaN(maxDelay) ? 'none' : seconds(maxDelay),
        );

        await verifyOrders(ctx, rig, out, ids, { timeoutMs: s.settleTimeoutMs, allProcessed: true });
        const orders = await readOrders(rig.db);
        const claimedMoreThanOnce = ids.filter((id) => (orders.get(id)?.attempts ?? 0) !== 1);
        const jobs = await jobsPresent(rig.redisClient(), rig.prefix, ids);
        out.figure('jobs in Redis for these orders', jobs);
        out.check(
          'each order claimed once (attempts 1)',
          claimedMoreThanOnce.length === 0,
          `${claimedMoreThanOnce.length} claimed ≠ 1 time`,
        );
        out.check('one job per order', jobs === ids.length, `${jobs}/${ids.length}`);
      },
    );
  },
};

export interface IdempotencyStormSizes {
  readonly keys: number;
  readonly perKey: number;
  /** Groups (keys) in flight at once. */
  readonly groupsInFlight: number;
  readonly workers: number;
  readonly settleTimeoutMs: number;
}

/** #6: many concurrent POSTs with one Idempotency-Key and one body each. */
export const idempotencyStorm: Scenario<IdempotencyStormSizes> = {
  id: 6,
  title: 'idempotency storm',
  fault: (s) => `${s.perKey} concurrent POSTs × ${s.keys} keys, same key and body within each group`,
  passLine: `exactly one order and one job per key; each response 201 or 200 replay; 0 lost, 0 duplicate effects`,
  sizes: {
    full: { keys: 500, perKey: 20, groupsInFlight: 5, workers: 3, settleTimeoutMs: 120_000 },
    quick: { keys: 40, perKey: 20, groupsInFlight: 2, workers: 2, settleTimeoutMs: 60_000 },
  },
  run(ctx, s) {
    return runScenario(
      ctx,
      { id: this.id, title: this.title, fault: this.fault(s), passLine: this.passLine },
      { label: 's6', workers: s.workers },
      async (rig, out) => {
        const tag = randomBytes(4).toString('hex');
        const samples: Sample[] = [];
        const groups: Array<{ key: string; answers: Sample[] }> = [];
        ctx.progress.phase('POST storm', s.keys * s.perKey);
        await pool(
          s.keys,
          s.groupsInFlight,
          async (k) => {
            const key = `chaos-${tag}-${k}`;
            const body = orderBody(k);
            const answers = await Promise.all(
              Array.from({ length: s.perKey }, () =>
                send(`${rig.fleet.apiUrl}/orders`, { method: 'POST', body, headers: { 'idempotency-key': key } }),
              ),
            );
            groups.push({ key, answers });
            samples.push(...answers);
            ctx.progress.update(samples.length, formatStatuses(samples));
          },
          ctx.signal,
        );
        const bad = samples.filter((x) => !(x.status === 201 || (x.status === 200 && x.replayed)));
        const notOneCreated = groups.filter((g) => g.answers.filter((x) => x.status === 201).length !== 1);
        const notOneId = groups.filter((g) => new Set(g.answers.map((x) => x.orderId)).size !== 1);
        const ids = [...new Set(samples.filter((x) => x.orderId).map((x) => x.orderId!))];
        const orders = await readOrders(rig.db);

        out.summary.p99Ms = p99(samples);
        out.summary.fiveXx = serverErrors(samples).length;
        out.figure('answers', formatStatuses(samples));
        out.figure('p99', `${p99(samples)} ms`);
        out.figure('orders in MongoDB', orders.size);
        out.check(
          'each response 201 or 200 replay (Idempotent-Replayed)',
          bad.length === 0,
          bad.length === 0 ? formatStatuses(samples) : `${formatStatuses(bad)} otherwise`,
        );
        out.check('exactly one 201 per key', notOneCreated.length === 0, `${notOneCreated.length} keys otherwise`);
        out.check(
          'one order id per key',
          notOneId.length === 0 && ids.length === s.keys,
          `${ids.length} ids for ${s.keys} keys`,
        );
        out.check(`exactly ${s.keys} orders`, orders.size === s.keys, orders.size);

        await verifyOrders(ctx, rig, out, ids, { timeoutMs: s.settleTimeoutMs, allProcessed: true });
        const counts = await jobCounts(rig.redisClient(), rig.prefix);
        const totalJobs = Object.values(counts).reduce((n, c) => n + c, 0);
        const present = await jobsPresent(rig.redisClient(), rig.prefix, ids);
        out.figure('jobs in Redis (all states) / for these orders', `${totalJobs} / ${present}`);
        out.check(
          `exactly ${s.keys} jobs`,
          totalJobs === s.keys && present === s.keys,
          `${totalJobs} jobs, ${present} of the orders'`,
        );
        out.figure('time', seconds(samples.length > 0 ? Date.now() - Math.min(...samples.map((x) => x.start)) : 0));
      },
    );
  },
};
