import { crashBeforeEnqueue, idempotencyStorm } from './scenarios-outbox.js';
import { mongoFrozen } from './scenarios-mongo.js';
import { redisFrozen, redisMemoryFull, redisRestartedEmpty, redisStopped } from './scenarios-redis.js';
import { shutdownUnderLoad, workerKills, workersAway } from './scenarios-crash.js';
import { providerOutage, providerSlow, sagaKills } from './scenarios-payment.js';
import { clusterFailover, sentinelFailover, workerCutFromRedis } from './scenarios-topology.js';
import type { Scenario, ScenarioContext, ScenarioResult } from './types.js';

/** A scenario with its sizes chosen by `quick`. */
export interface BatteryEntry {
  readonly id: number;
  readonly title: string;
  fault(quick: boolean): string;
  run(ctx: ScenarioContext, quick: boolean): Promise<ScenarioResult>;
}

function entry<S>(scenario: Scenario<S>): BatteryEntry {
  const sizes = (quick: boolean) => (quick ? scenario.sizes.quick : scenario.sizes.full);
  return {
    id: scenario.id,
    title: scenario.title,
    fault: (quick) => scenario.fault(sizes(quick)),
    run: (ctx, quick) => scenario.run(ctx, sizes(quick)),
  };
}

/** The fault battery of issue 3, in the order (#9, Redis restarted empty, added; #10–#12: the order workflow of issue 13; #13: Redis full under noeviction, issue 19). */
export const BATTERY: readonly BatteryEntry[] = [
  entry(workerKills),
  entry(redisStopped),
  entry(redisFrozen),
  entry(mongoFrozen),
  entry(crashBeforeEnqueue),
  entry(idempotencyStorm),
  entry(shutdownUnderLoad),
  entry(workersAway),
  entry(redisRestartedEmpty),
  entry(sagaKills),
  entry(providerOutage),
  entry(providerSlow),
  entry(redisMemoryFull),
  // Issue 16: real Redis topologies (#16 Sentinel, #17 Cluster) and a worker cut off from Redis (#18).
  entry(sentinelFailover),
  entry(clusterFailover),
  entry(workerCutFromRedis),
];

/** The entries named by `--only 1,2` (all when `only` is empty); throws on an unknown number. */
export function selectScenarios(only: readonly number[]): BatteryEntry[] {
  if (only.length === 0) return [...BATTERY];
  const unknown = only.filter((id) => !BATTERY.some((e) => e.id === id));
  if (unknown.length > 0) {
    throw new Error(`no scenario ${unknown.join(', ')}; the battery has ${BATTERY.map((e) => e.id).join(', ')}`);
  }
  return BATTERY.filter((e) => only.includes(e.id));
}
