import { Redis, type RedisOptions } from 'ioredis';
import { withTimeout } from '../lifecycle/process.js';

/**
 * `producer`: the api and the health process. Commands fail fast when Redis is away (no offline
 * queue, one retry, a command timeout), so a request gets a clear answer instead of hanging.
 * `worker`: BullMQ workers. They must wait for Redis to come back (`maxRetriesPerRequest: null`,
 * as BullMQ requires for blocking connections).
 */
export type RedisRole = 'producer' | 'worker';

export interface RedisConnectionOptions {
  readonly role: RedisRole;
  /** Bound for one command of a producer; ignored for workers (their blocking calls wait by design). */
  readonly commandTimeoutMs?: number;
  readonly connectionName?: string;
}

export function redisOptions(options: RedisConnectionOptions): RedisOptions {
  const common: RedisOptions = {
    connectionName: options.connectionName,
    // Reconnect forever with a capped back-off: an outage ends by itself when Redis returns.
    retryStrategy: (times) => Math.min(200 * times, 2000),
    lazyConnect: false,
  };
  if (options.role === 'worker') {
    return { ...common, maxRetriesPerRequest: null, enableOfflineQueue: true };
  }
  return {
    ...common,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    connectTimeout: options.commandTimeoutMs ?? 1000,
  };
}

/** An ioredis client for `url` with the options of its role. Errors are emitted, never thrown. */
export function createRedisConnection(url: string, options: RedisConnectionOptions): Redis {
  return new Redis(url, redisOptions(options));
}

/** PING with a bound; rejects when Redis does not answer in `timeoutMs`. */
export async function pingRedis(redis: Redis, timeoutMs: number): Promise<void> {
  await withTimeout(redis.ping(), timeoutMs, `Redis did not answer PING within ${timeoutMs} ms`);
}

/**
 * Redis's `maxmemory-policy`. BullMQ loses jobs under any eviction policy, so anything but
 * `noeviction` is a fault. CONFIG GET first; managed Redis often forbids it, then INFO memory.
 */
export async function readEvictionPolicy(redis: Redis): Promise<string | undefined> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    if (reply?.[1]) return reply[1];
  } catch {
    // fall back to INFO
  }
  const info = await redis.info('memory');
  return /maxmemory_policy:(\S+)/.exec(info)?.[1];
}
