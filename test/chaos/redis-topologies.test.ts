import test from 'ava';
import { workerCutFromRedis } from '../../scripts/chaos/scenarios-topology.js';
import { scenarioDetail } from '../../scripts/chaos/report.js';
import { silentProgress } from '../../scripts/chaos/types.js';

// The quick version of the battery's #18 (issue 16): a worker cut from Redis by a frozen TCP proxy.
// The Sentinel and Cluster failovers (#16, #17) run in test/e2e/e2e-redis-topologies.test.ts.

test.serial(
  'when one worker is cut from Redis (connections open, nothing passes), then the others finish its jobs within the stall bound and nothing is lost or doubled',
  async (t) => {
    t.timeout(150_000);
    const result = await workerCutFromRedis.run(
      { progress: silentProgress, signal: new AbortController().signal, mongo: 'auto', env: {} },
      { ...workerCutFromRedis.sizes.quick, settleTimeoutMs: 60_000 },
    );
    t.log(scenarioDetail(result));
    t.is(result.error, undefined, 'the scenario ran to its end');
    t.true(result.checks.length > 0, 'the scenario checked something');
    for (const check of result.checks) t.true(check.pass, `${check.name}: ${check.actual}`);
    t.is(result.summary.lost, 0, 'lost orders');
    t.is(result.summary.duplicateEffects, 0, 'duplicate effects');
  },
);
