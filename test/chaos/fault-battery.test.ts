import test, { type ExecutionContext } from 'ava';
import { crashBeforeEnqueue, idempotencyStorm } from '../../scripts/chaos/scenarios-outbox.js';
import { mongoFrozen } from '../../scripts/chaos/scenarios-mongo.js';
import { redisMemoryFull, redisStopped } from '../../scripts/chaos/scenarios-redis.js';
import { shutdownUnderLoad, workerKills } from '../../scripts/chaos/scenarios-crash.js';
import { providerOutage, providerSlow, sagaKills } from '../../scripts/chaos/scenarios-payment.js';
import { scenarioDetail } from '../../scripts/chaos/report.js';
import { silentProgress, type ScenarioContext, type ScenarioResult } from '../../scripts/chaos/types.js';

// The smaller versions of the fault battery (scripts/chaos/main.ts, `npm run chaos -- --quick`): the real
// processes against a private redis-server and a private MongoDB per scenario (never the shared ones,
// which these faults stop and freeze). Serial: each scenario loads the machine on its own. Time
// bounds are generous (a shared two-core machine); counts are strict.

/** No scenario of this file may take longer, whatever it waits for. */
const SCENARIO_TIMEOUT_MS = 150_000;

function context(): ScenarioContext {
  return { progress: silentProgress, signal: new AbortController().signal, mongo: 'auto', env: {} };
}

/** Every pass-line check of the result, one assertion each; the full figures go to the test's log. */
function assertPasses(t: ExecutionContext, result: ScenarioResult): void {
  t.log(scenarioDetail(result));
  t.is(result.error, undefined, 'the scenario ran to its end');
  t.true(result.checks.length > 0, 'the scenario checked something');
  for (const check of result.checks) t.true(check.pass, `${check.name}: ${check.actual}`);
  t.is(result.summary.lost, 0, 'lost orders');
  t.is(result.summary.duplicateEffects, 0, 'duplicate effects');
}

test.serial(
  'when a random worker is SIGKILLed every 2 s under load, then no order is lost or doubled and none stays PROCESSING past the recovery bound',
  async (t) => {
    t.timeout(SCENARIO_TIMEOUT_MS);
    const result = await workerKills.run(context(), {
      ...workerKills.sizes.quick,
      recoveryBoundMs: 45_000,
      settleTimeoutMs: 60_000,
    });
    assertPasses(t, result);
    t.true((result.summary.accepted ?? 0) >= workerKills.sizes.quick.orders * 0.99, 'the load was accepted');
  },
);

test.serial(
  'when Redis is full under noeviction (maxmemory reached) under POST load, then POSTs get 202 fast, no 5xx, and every order is processed once it has room',
  async (t) => {
    t.timeout(SCENARIO_TIMEOUT_MS);
    const result = await redisMemoryFull.run(context(), {
      ...redisMemoryFull.sizes.quick,
      p99BoundMs: 2000,
      settleTimeoutMs: 60_000,
    });
    assertPasses(t, result);
    t.is(result.summary.fiveXx, 0, '5xx');
  },
);

test.serial(
  'when Redis is stopped under POST load, then POSTs get 202 fast, no 5xx, and every order is processed after it returns',
  async (t) => {
    t.timeout(SCENARIO_TIMEOUT_MS);
    const result = await redisStopped.run(context(), {
      ...redisStopped.sizes.quick,
      p99BoundMs: 2000,
      settleTimeoutMs: 60_000,
    });
    assertPasses(t, result);
    t.is(result.summary.fiveXx, 0, '5xx');
  },
);

test.serial(
  'when MongoDB is frozen under load, then the api answers 503 with Retry-After fast (never hangs), stays up, and every accepted order is processed after',
  async (t) => {
    t.timeout(SCENARIO_TIMEOUT_MS);
    const result = await mongoFrozen.run(context(), {
      ...mongoFrozen.sizes.quick,
      // The contract is 2 s (npm run chaos holds the api to it: 1.5 s measured). Here, on a CI
      // machine running other test files at once, the bound only has to tell "fails fast" from
      // "hangs" (unbounded, a frozen MongoDB holds a request for 30 s): 5 s, while every count
      // (503s with Retry-After, process up, every accepted order processed) stays exact.
      p99BoundMs: 5000,
      settleTimeoutMs: 60_000,
    });
    assertPasses(t, result);
  },
);

test.serial(
  'when the api crashes between insert and enqueue, then the reconciler enqueues the order within one interval and it is processed once',
  async (t) => {
    t.timeout(SCENARIO_TIMEOUT_MS);
    const result = await crashBeforeEnqueue.run(context(), { ...crashBeforeEnqueue.sizes.quick, toleranceMs: 3000 });
    assertPasses(t, result);
  },
);

test.serial(
  'when 20 concurrent POSTs share each idempotency key, then there is exactly one order and one job per key and every answer is 201 or a 200 replay',
  async (t) => {
    t.timeout(SCENARIO_TIMEOUT_MS);
    const result = await idempotencyStorm.run(context(), idempotencyStorm.sizes.quick);
    assertPasses(t, result);
    t.is(result.summary.accepted, idempotencyStorm.sizes.quick.keys);
  },
);

test.serial(
  'when every worker gets SIGTERM while its jobs run, then each exits 0 within its bound, no job stays active, and nothing is lost',
  async (t) => {
    t.timeout(SCENARIO_TIMEOUT_MS);
    const result = await shutdownUnderLoad.run(context(), {
      ...shutdownUnderLoad.sizes.quick,
      exitMarginMs: 10_000,
      settleTimeoutMs: 60_000,
    });
    assertPasses(t, result);
    t.is(result.summary.accepted, shutdownUnderLoad.sizes.quick.jobs);
  },
);

test.serial(
  'when a random worker of 3 is SIGKILLed every 2 s while the saga reserves and charges through a slow provider, then no order is lost, charged twice or oversold',
  async (t) => {
    t.timeout(SCENARIO_TIMEOUT_MS);
    const result = await sagaKills.run(context(), sagaKills.sizes.quick);
    assertPasses(t, result);
    t.true((result.summary.accepted ?? 0) >= sagaKills.sizes.quick.orders * 0.99, 'the load was accepted');
  },
);

test.serial(
  'when the payment provider answers 503 for longer than the retry budget, then the breaker opens and closes, no order FAILS and all are PROCESSED after',
  async (t) => {
    t.timeout(SCENARIO_TIMEOUT_MS);
    const result = await providerOutage.run(context(), providerOutage.sizes.quick);
    assertPasses(t, result);
    t.true((result.summary.accepted ?? 0) > 0, 'orders were accepted');
  },
);

test.serial(
  'when the payment provider answers charges after the timeout, then every order is PROCESSED with exactly one charge and none is charged twice',
  async (t) => {
    t.timeout(SCENARIO_TIMEOUT_MS);
    const result = await providerSlow.run(context(), providerSlow.sizes.quick);
    assertPasses(t, result);
    t.true((result.summary.accepted ?? 0) > 0, 'orders were accepted');
  },
);
