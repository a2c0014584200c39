import type { RedisClient } from '../redis/connection.js';
import type { Connection } from 'mongoose';
import { pingMongo } from '../mongo/connection.js';
import { pingRedis, readEvictionPolicy } from '../redis/connection.js';

/** How long a read of Redis's eviction policy is trusted before it is read again. */
const POLICY_TTL_MS = 30_000;

/** The outcome of one dependency probe. */
export interface CheckResult {
  readonly status: 'up' | 'down';
  readonly latencyMs: number;
  readonly error?: string;
}

export interface DependencyChecks {
  readonly mongodb: () => Promise<CheckResult>;
  readonly redis: () => Promise<CheckResult>;
}

/** Probes that never throw and never take longer than `timeoutMs`. */
export function createDependencyChecks(deps: {
  readonly mongo: Connection;
  readonly redis: RedisClient;
  readonly timeoutMs: number;
}): DependencyChecks {
  const probe = async (ping: () => Promise<void>): Promise<CheckResult> => {
    const started = performance.now();
    try {
      await ping();
      return { status: 'up', latencyMs: Math.round(performance.now() - started) };
    } catch (err) {
      return {
        status: 'down',
        latencyMs: Math.round(performance.now() - started),
        error: err instanceof Error ? err.message : String(err),
      };
    }
  };
  let policy: { value: string | undefined; readAt: number } | undefined;
  const checkPolicy = async () => {
    if (!policy || Date.now() - policy.readAt > POLICY_TTL_MS) {
      policy = { value: await readEvictionPolicy(deps.redis), readAt: Date.now() };
    }
    if (policy.value && policy.value !== 'noeviction') {
      throw new Error(`Redis maxmemory-policy is ${policy.value}; BullMQ needs noeviction or it loses jobs`);
    }
  };
  return {
    mongodb: () => probe(() => pingMongo(deps.mongo, deps.timeoutMs)),
    redis: () =>
      probe(async () => {
        await pingRedis(deps.redis, deps.timeoutMs);
        await checkPolicy();
      }),
  };
}
