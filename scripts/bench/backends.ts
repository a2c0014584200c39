import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { answers, startRedisServer, withDatabase } from '../lib/embedded-services.js';
import { STANDIN_DIR, startStandin, type StandinProcess } from '../lib/mongo-standin.js';
import { readCpuMs } from './processes.js';

/**
 * The Redis and MongoDB the bench runs against. Throughput and latency phases use the configured
 * ones (REDIS_URL, MONGO_URL), each phase in its own database and queue prefix. Command counts
 * use private servers the bench starts itself: INFO commandstats and the server's op counters are
 * global, and other work on this machine would pollute them.
 */

/** The commands that read or write data; everything else (hello, ping, serverStatus…) is not counted. */
export const DATA_COMMANDS = [
  'insert',
  'update',
  'delete',
  'find',
  'findAndModify',
  'getMore',
  'aggregate',
  'count',
  'distinct',
] as const;

export type CommandCounts = Record<string, number>;

export interface RedisBackend {
  readonly url: string;
  /** `configured` (REDIS_URL) or `private` (a redis-server the bench started). */
  readonly kind: 'configured' | 'private';
  readonly version: string;
  /** A connection for the bench's own commands (stats, seeding, cleanup). */
  readonly client: Redis;
  stop(): Promise<void>;
}

export interface MongoBackend {
  /** The URL of database `name` on this server. */
  url(name: string): string;
  readonly kind: 'configured' | 'private';
  /** `standin` when buildInfo carries the stand-in's marker, else `mongod`. */
  readonly server: 'standin' | 'mongod';
  readonly version: string;
  readonly client: mongoose.mongo.MongoClient;
  /** The server's pid when the bench started it (its CPU time can then be read). */
  readonly pid: number | undefined;
  /**
   * Data commands by name so far. On a private stand-in: exactly the commands on database `db`
   * (from its `--verbose` log); on a mongod: serverStatus `metrics.commands`, server-wide. Undefined
   * when the server cannot say (a shared stand-in has no `metrics.commands`): not measured, never 0.
   */
  commandCounts(db: string): Promise<CommandCounts | undefined>;
  /** serverStatus opcounters (server-wide). */
  opcounters(): Promise<CommandCounts>;
  /** CPU time of the server process in ms, when the bench started it. */
  cpuMs(): Promise<number | undefined>;
  readonly description: string;
  stop(): Promise<void>;
}

export class BenchSetupError extends Error {
  override name = 'BenchSetupError';
}

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
const DEFAULT_MONGO_URL = 'mongodb://127.0.0.1:27017/orders';

function redisClient(url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: null, connectionName: 'bench' });
  client.on('error', () => undefined);
  return client;
}

async function redisVersion(client: Redis): Promise<string> {
  const info = await client.info('server');
  return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
}

/** REDIS_URL (or the default) when it answers; otherwise an error that says what to do. */
export async function configuredRedis(env: NodeJS.ProcessEnv): Promise<RedisBackend> {
  const url = env.REDIS_URL || DEFAULT_REDIS_URL;
  if (!(await answers(url, 6379))) {
    throw new BenchSetupError(
      `Redis does not answer at ${url.replace(/\/\/[^@/]*@/, '//***@')}. Start it (CI and this machine: ` +
        '`source ../shared/ci/services.sh`) or set REDIS_URL to a running Redis.',
    );
  }
  const client = redisClient(url);
  const version = await redisVersion(client);
  const policy = /maxmemory_policy:(\S+)/.exec(await client.info('memory'))?.[1];
  if (policy && policy !== 'noeviction') {
    client.disconnect();
    throw new BenchSetupError(`Redis at ${url} has maxmemory-policy ${policy}; BullMQ needs noeviction.`);
  }
  return { url, kind: 'configured', version, client, stop: async () => client.disconnect() };
}

/** A throwaway redis-server on a free port; null (with the reason) when none can be started. */
export async function privateRedis(): Promise<RedisBackend | { error: string }> {
  try {
    const server = await startRedisServer();
    const client = redisClient(server.url);
    const version = await redisVersion(client);
    return {
      url: server.url,
      kind: 'private',
      version,
      client,
      stop: async () => {
        client.disconnect();
        await server.stop();
      },
    };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

async function connectMongo(url: string): Promise<mongoose.mongo.MongoClient> {
  const client = new mongoose.mongo.MongoClient(url, { serverSelectionTimeoutMS: 5000, maxPoolSize: 20 });
  await client.connect();
  return client;
}

/** buildInfo of the server; the stand-in marks itself (`standin` field, gitVersion `mongo-standin`). */
export async function identifyMongo(
  client: mongoose.mongo.MongoClient,
): Promise<{ server: 'standin' | 'mongod'; version: string }> {
  const info = await client.db('admin').command({ buildInfo: 1 });
  const standin = typeof info.standin === 'string' || info.gitVersion === 'mongo-standin';
  return { server: standin ? 'standin' : 'mongod', version: String(info.version ?? 'unknown') };
}

async function serverStatus(client: mongoose.mongo.MongoClient): Promise<Record<string, unknown>> {
  return client.db('admin').command({ serverStatus: 1 });
}

function numbers(record: unknown): CommandCounts {
  const out: CommandCounts = {};
  for (const [k, v] of Object.entries((record as Record<string, unknown>) ?? {})) out[k] = Number(v);
  return out;
}

/**
 * mongod: serverStatus metrics.commands.<name>.total for the data commands (server-wide); undefined
 * when the server keeps no such counters (the stand-in), so nothing reads as zero commands.
 */
async function mongodCommandCounts(client: mongoose.mongo.MongoClient): Promise<CommandCounts | undefined> {
  const status = await serverStatus(client);
  const commands = (status.metrics as Record<string, unknown> | undefined)?.commands as
    Record<string, { total?: unknown }> | undefined;
  if (!commands) return undefined;
  const out: CommandCounts = {};
  for (const name of DATA_COMMANDS) out[name] = Number(commands[name]?.total ?? 0);
  return out;
}

/** MONGO_URL (or the default) when it answers; otherwise an error that says what to do. */
export async function configuredMongo(env: NodeJS.ProcessEnv): Promise<MongoBackend> {
  const url = env.MONGO_URL || DEFAULT_MONGO_URL;
  if (!(await answers(url, 27017))) {
    throw new BenchSetupError(
      `MongoDB does not answer at ${url.replace(/\/\/[^@/]*@/, '//***@')}. Start it (CI and this machine: ` +
        '`source ../shared/ci/services.sh`) or set MONGO_URL to a running MongoDB.',
    );
  }
  const client = await connectMongo(url);
  const { server, version } = await identifyMongo(client);
  return {
    url: (name) => withDatabase(url, name),
    kind: 'configured',
    server,
    version,
    client,
    pid: undefined,
    commandCounts: () => mongodCommandCounts(client),
    opcounters: async () => numbers((await serverStatus(client)).opcounters),
    cpuMs: async () => undefined,
    description:
      server === 'standin'
        ? `MONGO_URL: the in-memory MongoDB wire-protocol stand-in (${STANDIN_DIR}), not a real mongod`
        : `MONGO_URL: MongoDB ${version}`,
    stop: () => client.close(),
  };
}

/**
 * A private stand-in (`node ../shared/mongo-standin/server.js --port 0 --verbose`). Its verbose log
 * names every command and its database, which gives exact per-database command counts.
 */
export async function privateStandin(): Promise<MongoBackend | { error: string }> {
  const counts = new Map<string, CommandCounts>();
  const seen = new Set<string>();
  const seenListeners = new Set<() => void>();
  // "[mongo-standin] conn12 findAndModify bench_x.orders" (target is "<db>" or "<db>.<collection>")
  const countLine = (line: string) => {
    const match = /^\[mongo-standin\] conn\S+ (\S+) ([^.\s]+)/.exec(line);
    if (!match) return;
    const [, name, db] = match;
    if (name === 'ping' && db.startsWith('benchmarker_')) {
      seen.add(db);
      for (const listener of seenListeners) listener();
      return;
    }
    const forDb = counts.get(db) ?? {};
    forDb[name] = (forDb[name] ?? 0) + 1;
    counts.set(db, forDb);
  };
  let standin: StandinProcess;
  try {
    standin = await startStandin({ verbose: true, onStderrLine: countLine });
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
  const { child, uri } = standin;
  process.once('exit', () => child.kill('SIGKILL'));
  const client = await connectMongo(`${uri}/admin`);
  const { server, version } = await identifyMongo(client);
  let markers = 0;

  /** Pings a marker database and waits until its log line is read: every earlier line is read too. */
  async function flushLog(): Promise<void> {
    markers += 1;
    const marker = `benchmarker_${markers}`;
    await client.db(marker).command({ ping: 1 });
    const deadline = Date.now() + 5000;
    while (!seen.has(marker)) {
      if (Date.now() > deadline) throw new Error('the stand-in log did not show the marker ping within 5 s');
      await new Promise<void>((done) => {
        const listener = () => {
          seenListeners.delete(listener);
          done();
        };
        seenListeners.add(listener);
        setTimeout(listener, 50);
      });
    }
  }

  return {
    url: (name) => `${uri}/${name}`,
    kind: 'private',
    server,
    version,
    client,
    pid: child.pid,
    async commandCounts(db) {
      await flushLog();
      const all = counts.get(db) ?? {};
      return Object.fromEntries(DATA_COMMANDS.map((name) => [name, all[name] ?? 0]));
    },
    opcounters: async () => numbers((await serverStatus(client)).opcounters),
    cpuMs: async () => (child.pid ? readCpuMs(child.pid) : undefined),
    description: `a private stand-in (${standin.server} --verbose), started by the bench`,
    async stop() {
      await client.close().catch(() => undefined);
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([new Promise((done) => child.once('exit', done)), sleep(5000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  };
}

/** INFO commandstats: calls by command (lower case), without the bench's own INFO calls. */
export async function redisCommandCounts(client: Redis): Promise<CommandCounts> {
  const info = await client.info('commandstats');
  const out: CommandCounts = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (match[1] === 'info') continue;
    out[match[1]] = Number(match[2]);
  }
  return out;
}

/** used_memory in bytes. */
export async function redisUsedMemory(client: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1] ?? 0);
}

/** Redis's own CPU time in ms (INFO cpu, user + sys). */
export async function redisCpuMs(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
  return (user + sys) * 1000;
}

/** b - a for every key of either. */
export function diffCounts(a: CommandCounts, b: CommandCounts): CommandCounts {
  const out: CommandCounts = {};
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = (b[key] ?? 0) - (a[key] ?? 0);
    if (d !== 0) out[key] = d;
  }
  return out;
}

export function sumCounts(counts: CommandCounts): number {
  return Object.values(counts).reduce((s, n) => s + n, 0);
}

/** Deletes every Redis key under `prefix:` (SCAN + UNLINK, bounded batches). */
export async function deletePrefix(client: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await client.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Waits until `check` holds, polling every `everyMs`; throws `message()` after `timeoutMs`. */
export async function pollUntil(
  check: () => Promise<boolean>,
  options: { readonly timeoutMs: number; readonly everyMs?: number; readonly message: () => string },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(options.message());
    await sleep(options.everyMs ?? 100);
  }
}
