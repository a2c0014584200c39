import type { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import { pingMongo } from '../mongo/connection.js';
import { pingRedis } from '../redis/connection.js';

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
  readonly redis: Redis;
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
  return {
    mongodb: () => probe(() => pingMongo(deps.mongo, deps.timeoutMs)),
    redis: () => probe(() => pingRedis(deps.redis, deps.timeoutMs)),
  };
}
