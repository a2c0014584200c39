import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisTopology } from '../config/config.js';
import { withTimeout } from '../lifecycle/process.js';
import { redactUrl } from '../logging/logger.js';

/** A connection to any topology: one Redis, a Sentinel-watched master (both `Redis`), or a `Cluster`. */
export type RedisClient = Redis | Cluster;

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
    // After a failover the old master may come back as a replica: a write it refuses (READONLY)
    // reconnects, and the reconnect asks the Sentinels (or the slot map) for the new master.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
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

/**
 * The one place every Redis connection of the fleet is made: an ioredis client for the configured
 * topology (a URL string means one Redis) with the options of its role. Errors are emitted, never thrown.
 * - single: `new Redis(url)`; credentials in the URL win over REDIS_USERNAME / REDIS_PASSWORD.
 * - sentinel: ioredis asks the Sentinels for the master (`name`) on every (re)connect, so it finds
 *   the new one after a failover; a producer keeps failing fast while no master is known, a worker waits.
 * - cluster: `Cluster` with the role's options per node; BullMQ takes it as `connection` (its keys
 *   share a slot through the prefix's hash tag, which config validation demands).
 */
export function createRedisConnection(url: string, options: RedisConnectionOptions): Redis;
export function createRedisConnection(topology: RedisTopology | string, options: RedisConnectionOptions): RedisClient;
export function createRedisConnection(topology: RedisTopology | string, options: RedisConnectionOptions): RedisClient {
  const role = redisOptions(options);
  if (typeof topology === 'string') return new Redis(topology, role);
  const auth: RedisOptions = {
    username: topology.username,
    password: topology.password,
    ...(topology.tls ? { tls: {} } : {}),
  };
  switch (topology.kind) {
    case 'single':
      return new Redis(topology.url, { ...role, ...auth });
    case 'sentinel':
      return new Redis({
        ...role,
        ...auth,
        sentinels: topology.sentinels.map((n) => ({ host: n.host, port: n.port })),
        name: topology.name,
        role: 'master',
        sentinelUsername: topology.sentinelUsername,
        sentinelPassword: topology.sentinelPassword,
        ...(topology.sentinelTls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
        sentinelRetryStrategy: (times) => Math.min(200 * times, 2000),
        sentinelCommandTimeout: options.commandTimeoutMs ?? 1000,
        // Not `failoverDetector`: in ioredis 5.11 its `+switch-master` disconnect can land while the
        // client is reconnecting and leave it closed for good (seen here: workers stuck on
        // "Connection is closed." after a failover). The reconnect after the master's loss asks the
        // Sentinels anyway, within the retry back-off (≤ 2 s).
      });
    case 'cluster':
      return new Cluster(
        topology.nodes.map((n) => ({ host: n.host, port: n.port })),
        clusterOptions(role, auth, options.role),
      );
  }
}

function clusterOptions(role: RedisOptions, auth: RedisOptions, kind: RedisRole): ClusterOptions {
  const { retryStrategy, enableOfflineQueue, ...perNode } = role;
  return {
    // A producer fails fast while the slot's master is gone (a few tries, about half a second, then
    // the api answers 202); a worker keeps trying through the failover (ioredis's default, 16).
    ...(kind === 'producer' ? { maxRedirections: 4 } : {}),
    redisOptions: { ...perNode, ...auth },
    enableOfflineQueue,
    clusterRetryStrategy: retryStrategy,
    // Reads and writes go to masters only: a replica lags, and BullMQ's scripts write.
    scaleReads: 'master',
    // While a slot's master fails over, commands wait for the new slot map instead of failing at once.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 200,
    slotsRefreshTimeout: 2000,
  };
}

/** The topology for a log line, without credentials: `redis://…`, `sentinel <name> via h:p,…`, `cluster h:p,…`. */
export function describeRedisTopology(topology: RedisTopology): string {
  const list = (nodes: readonly { host: string; port: number }[]) => nodes.map((n) => `${n.host}:${n.port}`).join(',');
  switch (topology.kind) {
    case 'single':
      return redactUrl(topology.url);
    case 'sentinel':
      return `sentinel ${topology.name} via ${list(topology.sentinels)}`;
    case 'cluster':
      return `cluster ${list(topology.nodes)}`;
  }
}

/** The masters of a Cluster (every node for one Redis): what a SCAN or a server-wide read must cover. */
export function redisMasters(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/** PING with a bound; rejects when Redis does not answer in `timeoutMs`. */
export async function pingRedis(redis: RedisClient, timeoutMs: number): Promise<void> {
  await withTimeout(redis.ping(), timeoutMs, `Redis did not answer PING within ${timeoutMs} ms`);
}

/**
 * Redis's `maxmemory-policy`. BullMQ loses jobs under any eviction policy, so anything but
 * `noeviction` is a fault. CONFIG GET first; managed Redis often forbids it, then INFO memory.
 */
export async function readEvictionPolicy(redis: RedisClient): Promise<string | undefined> {
  // On a Cluster every master holds queue keys: the first one that evicts is the one reported.
  const policies = await Promise.all(redisMasters(redis).map(readNodeEvictionPolicy));
  return policies.find((p) => p !== undefined && p !== 'noeviction') ?? policies.find((p) => p !== undefined);
}

async function readNodeEvictionPolicy(redis: Redis): Promise<string | undefined> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    if (reply?.[1]) return reply[1];
  } catch {
    // fall back to INFO
  }
  const info = await redis.info('memory');
  return /maxmemory_policy:(\S+)/.exec(info)?.[1];
}
