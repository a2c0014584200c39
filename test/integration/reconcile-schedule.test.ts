import test, { type ExecutionContext } from 'ava';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Counter } from 'prom-client';
import { RECONCILE_QUEUE, createLogger, createRedisConnection } from '#common';
import { createReconcileSchedule, type ReconcileSchedule } from '../../worker/reconcile-schedule.js';
import {
  emptyReconcileReport,
  type ReconcileReport,
  type Reconciler,
} from '../../worker/services/reconciler-service.js';
import { LOCK_DURATION_MS, STALLED_INTERVAL_MS } from '../../worker/settings.js';
import { testServices, uniqueName } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The reconciler's clock on real Redis: ticks run one at a time across the fleet, so a tick that never
 * finishes must not stop the ones after it, whether its worker died or the tick itself hangs.
 */

const INTERVAL_MS = 500;
const logger = createLogger({ service: 'test', level: 'silent' });

/** A reconciler whose ticks are counted; the first `hanging` of them never finish (until `release`). */
function countingReconciler(hanging: number) {
  let started = 0;
  let finished = 0;
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  const reconciler = {
    async tick(): Promise<ReconcileReport> {
      started += 1;
      if (started <= hanging) await held;
      finished += 1;
      return emptyReconcileReport();
    },
  } as Reconciler;
  return { reconciler, started: () => started, finished: () => finished, release: () => release() };
}

const connections: Redis[] = [];
const schedules: ReconcileSchedule[] = [];
const releases: (() => void)[] = [];

function startSchedule(
  prefix: string,
  name: string,
  reconciler: Reconciler,
  bounds: { tickTimeoutMs?: number; stuckAfterMs?: number } = {},
) {
  return testServices().then(async ({ redisUrl }) => {
    const connection = createRedisConnection(redisUrl, {
      role: 'worker',
      connectionName: `reconcile-schedule-test:${name}`,
    });
    connections.push(connection);
    const schedule = createReconcileSchedule({
      connection,
      config: { queuePrefix: prefix, reconcileIntervalMs: INTERVAL_MS },
      workerId: name,
      reconciler,
      metrics: {
        reconcilerFindings: new Counter({ name: 'findings', help: 'test', labelNames: ['kind'], registers: [] }),
      },
      logger,
      ...bounds,
    });
    schedules.push(schedule);
    await schedule.start();
    return schedule;
  });
}

test.after.always(async () => {
  for (const release of releases) release();
  await Promise.all(schedules.map((s) => s.close(1000).catch(() => undefined)));
  for (const c of connections) c.disconnect();
});

/** The tick queue of `prefix` on its own connection, as an operator's tool would open it. */
async function openTickQueue(prefix: string) {
  const { redisUrl } = await testServices();
  const connection = createRedisConnection(redisUrl, {
    role: 'worker',
    connectionName: 'reconcile-schedule-test:tool',
  });
  const queue = new Queue(RECONCILE_QUEUE, { connection, prefix });
  return {
    queue,
    async close() {
      await queue.close();
      connection.disconnect();
    },
  };
}

async function obliterate(prefix: string) {
  const tool = await openTickQueue(prefix);
  await tool.queue.obliterate({ force: true }).catch(() => undefined);
  await tool.close();
}

/** A schedule of its own prefix that has run its first tick; its queue is removed after the test. */
async function tickingSchedule(t: ExecutionContext, label: string, stuckAfterMs: number) {
  const prefix = uniqueName(`reconcile_schedule_${label}`);
  t.teardown(() => obliterate(prefix));
  const ticks = countingReconciler(0);
  const schedule = await startSchedule(prefix, label, ticks.reconciler, { stuckAfterMs });
  await waitFor('a first tick', async () => (ticks.finished() >= 1 ? true : undefined));
  return { prefix, ticks, schedule };
}

test('when the worker running a tick dies, then another worker runs the next tick once the stalled check hands the slot back (about 15 s, not 30 to 60)', async (t) => {
  const prefix = uniqueName('reconcile_schedule_dead');
  t.teardown(() => obliterate(prefix));
  const dying = countingReconciler(1);
  releases.push(dying.release);
  const a = await startSchedule(prefix, 'dying', dying.reconciler);
  await waitFor('the first worker to take a tick', async () => (dying.started() >= 1 ? true : undefined));

  // As a SIGKILL would: the worker stops without finishing its tick or renewing its lock.
  await a.close(1);
  const diedAt = Date.now();
  const survivor = countingReconciler(0);
  await startSchedule(prefix, 'survivor', survivor.reconciler);
  await waitFor('a tick on the surviving worker', async () => (survivor.finished() >= 1 ? true : undefined), 45_000);
  const waited = Date.now() - diedAt;
  t.log(`first tick on the surviving worker ${(waited / 1000).toFixed(1)} s after the other died`);
  // The lock expires LOCK_DURATION_MS after its last renewal at most, and a stalled check runs every
  // STALLED_INTERVAL_MS: BullMQ's defaults (30 s each) would take 30 s at the least.
  const bound = LOCK_DURATION_MS + 2 * STALLED_INTERVAL_MS + 5000;
  t.true(waited < bound, `the next tick ran ${waited} ms after the death (bound ${bound} ms)`);
});

test('when a tick hangs, then it is abandoned after the tick bound and the ticks after it run', async (t) => {
  const prefix = uniqueName('reconcile_schedule_hung');
  t.teardown(() => obliterate(prefix));
  const hung = countingReconciler(1);
  releases.push(hung.release);
  await startSchedule(prefix, 'hung', hung.reconciler, { tickTimeoutMs: 1000 });
  await waitFor('the hanging tick', async () => (hung.started() >= 1 ? true : undefined));
  await waitFor(
    'two ticks after the one that hangs',
    async () => (hung.finished() >= 2 ? true : undefined),
    20_000,
    () => JSON.stringify({ started: hung.started(), finished: hung.finished() }),
  );
  t.true(hung.started() >= 3, 'the ticks went on while the first still hung');
});

test('when this process’s tick consumer stops taking jobs, then it is replaced once the due tick has waited stuckAfterMs, and ticks go on', async (t) => {
  const { ticks, schedule } = await tickingSchedule(t, 'parked', 2000);

  // A consumer that no longer fetches, as one whose blocking connection a failover left parked.
  const parked = schedule.consumer();
  await parked.pause(true);
  const before = ticks.finished();
  await waitFor(
    'a new consumer and ticks after it',
    async () => (schedule.consumer() !== parked && ticks.finished() >= before + 2 ? true : undefined),
    20_000,
    () => JSON.stringify({ replaced: schedule.consumer() !== parked, ticks: ticks.finished() - before }),
  );
  t.pass('the parked consumer was replaced and ticks went on');
});

test('when the tick queue is paused by an operator, then the consumer is not restarted', async (t) => {
  const { prefix, schedule } = await tickingSchedule(t, 'paused', 1000);
  const consumer = schedule.consumer();
  const tool = await openTickQueue(prefix);
  t.teardown(() => tool.close());
  const { queue } = tool;
  await queue.pause();
  await sleep(3000);
  t.false(await schedule.checkConsumer(), 'no restart while paused');
  t.is(schedule.consumer(), consumer, 'the same consumer');
  await queue.resume();
});
