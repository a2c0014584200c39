import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';
import { createRedisConnection, loadConfig, type RedisClient } from '#common';
import type { RedisTopologyProcesses } from '../lib/redis-topology.js';
import { ChaosFleet } from './fleet.js';
import { PrivateMongo, PrivateRedis } from './private-services.js';
import type { Check, ScenarioContext, ScenarioResult, Summary } from './types.js';

/**
 * Settings every scenario runs with unless it says otherwise: a reconciler that ticks every second
 * and looks at orders older than one second, so that what it repairs is repaired within seconds; and
 * a per-client rate limit far above the battery's traffic, which all comes from one address (the
 * limiter stays on the request path, so the faults reach its Redis calls too).
 */
export const BATTERY_ENV: Readonly<Record<string, string>> = Object.freeze({
  RECONCILE_INTERVAL_MS: '1000',
  RECONCILE_GRACE_MS: '1000',
  RATE_LIMIT_PER_MINUTE: '1000000',
});

/** A scenario's world: a private Redis and MongoDB, the processes, and the battery's own connections. */
export class Rig {
  private redisConnection: RedisClient | undefined;

  private constructor(
    readonly name: string,
    private readonly privateRedis: PrivateRedis | undefined,
    /** The Sentinel or Cluster topology the scenario runs on, instead of one private redis-server. */
    readonly topology: RedisTopologyProcesses | undefined,
    readonly mongo: PrivateMongo,
    readonly fleet: ChaosFleet,
    readonly db: Connection,
    /** QUEUE_PREFIX: the name, hash-tagged (`{name}`) on a Cluster. */
    readonly prefix: string,
  ) {}

  /** The scenario's private redis-server (its faults stop and freeze it); not there on a topology. */
  get redis(): PrivateRedis {
    if (!this.privateRedis) throw new Error('this scenario runs on a Redis topology, not one private redis-server');
    return this.privateRedis;
  }

  /** Starts the private services and the fleet's api, health and `workers` workers (all ready). */
  static async start(
    ctx: ScenarioContext,
    options: {
      readonly label: string;
      readonly workers: number;
      readonly env?: Record<string, string>;
      readonly api?: boolean;
      readonly health?: boolean;
      /** Starts a Sentinel or Cluster topology (scripts/lib/redis-topology.ts) instead of one redis-server. */
      readonly topology?: () => Promise<RedisTopologyProcesses>;
    },
  ): Promise<Rig> {
    const name = `chaos_${options.label}_${process.pid}_${randomBytes(3).toString('hex')}`;
    const [redisStart, mongoStart] = await Promise.allSettled([
      options.topology ? options.topology() : PrivateRedis.start(),
      PrivateMongo.start(ctx.mongo, process.env),
    ]);
    if (redisStart.status === 'rejected' || mongoStart.status === 'rejected') {
      if (redisStart.status === 'fulfilled') await closeRedis(redisStart.value);
      if (mongoStart.status === 'fulfilled') await mongoStart.value.close();
      throw redisStart.status === 'rejected' ? redisStart.reason : (mongoStart as PromiseRejectedResult).reason;
    }
    const redis = redisStart.value instanceof PrivateRedis ? redisStart.value : undefined;
    const topology = redisStart.value instanceof PrivateRedis ? undefined : redisStart.value;
    const prefix = topology?.kind === 'cluster' ? `{${name}}` : name;
    const mongo = mongoStart.value;
    let db: Connection | undefined;
    try {
      const fleet = await ChaosFleet.create({
        ...BATTERY_ENV,
        ...options.env,
        ...ctx.env,
        MONGO_URL: mongo.url(name),
        ...(topology ? topology.env : { REDIS_URL: (redis as PrivateRedis).url }),
        QUEUE_PREFIX: prefix,
      });
      db = await mongoose.createConnection(mongo.url(name), { serverSelectionTimeoutMS: 10_000 }).asPromise();
      try {
        await fleet.startAll(options.workers, { api: options.api, health: options.health });
      } catch (err) {
        await fleet.stopAll(5000);
        throw new Error(`the fleet did not start: ${err instanceof Error ? err.message : String(err)}`);
      }
      return new Rig(name, redis, topology, mongo, fleet, db, prefix);
    } catch (err) {
      await db?.close().catch(() => undefined);
      await Promise.all([closeRedis(redisStart.value), mongo.close()]);
      throw err;
    }
  }

  /**
   * A connection to the scenario's Redis for the battery's own reads (fails fast while Redis is
   * away); on a topology, through the processes' own factory, so it follows a failover as they do.
   */
  redisClient(): RedisClient {
    if (!this.redisConnection) {
      this.redisConnection = this.topology
        ? createRedisConnection(loadConfig(this.topology.env).redis, { role: 'producer', commandTimeoutMs: 2000 })
        : new Redis(this.redis.url, { maxRetriesPerRequest: 2, connectTimeout: 2000 });
      this.redisConnection.on('error', () => undefined);
    }
    return this.redisConnection;
  }

  /** Stops every process, closes the battery's connections, stops the private services. */
  async close(): Promise<void> {
    await this.fleet.stopAll(10_000);
    this.redisConnection?.disconnect();
    await this.db.close().catch(() => undefined);
    await Promise.all([closeRedis(this.privateRedis ?? this.topology), this.mongo.close()]);
  }
}

function closeRedis(redis: PrivateRedis | RedisTopologyProcesses | undefined): Promise<void> {
  if (!redis) return Promise.resolve();
  return redis instanceof PrivateRedis ? redis.close() : redis.stop();
}

/** Collects a scenario's figures and checks as it runs. */
export class Outcome {
  readonly summary: Summary = {};
  readonly figures: Array<readonly [string, string]> = [];
  readonly checks: Check[] = [];
  readonly evidence: string[] = [];
  /** Raw data (requests, probes) written beside the process logs for a closer look. */
  readonly attachments = new Map<string, unknown>();
  mongo = '';

  attach(name: string, data: unknown): void {
    this.attachments.set(name, data);
  }

  figure(name: string, value: string | number): void {
    this.figures.push([name, typeof value === 'number' ? String(Math.round(value)) : value]);
  }

  check(name: string, pass: boolean, actual: string | number): boolean {
    this.checks.push({ name, pass, actual: typeof actual === 'number' ? String(Math.round(actual)) : actual });
    return pass;
  }
}

/** Meta data of a scenario, as its table row shows it. */
export interface ScenarioMeta {
  readonly id: number;
  readonly title: string;
  readonly fault: string;
  readonly passLine: string;
}

/**
 * Runs one scenario: starts its rig, runs `body`, and always stops every process and service it
 * started. A thrown error (a process that did not start, Ctrl-C) makes the scenario FAIL with it.
 */
export async function runScenario(
  ctx: ScenarioContext,
  meta: ScenarioMeta,
  rigOptions: Parameters<typeof Rig.start>[1],
  body: (rig: Rig, out: Outcome) => Promise<void>,
): Promise<ScenarioResult> {
  const started = Date.now();
  const out = new Outcome();
  let rig: Rig | undefined;
  let error: string | undefined;
  try {
    ctx.progress.phase('starting private Redis, MongoDB and the processes');
    rig = await Rig.start(ctx, rigOptions);
    out.mongo = rig.mongo.description;
    await body(rig, out);
  } catch (err) {
    error = ctx.signal.aborted ? 'interrupted' : err instanceof Error ? (err.stack ?? err.message) : String(err);
  } finally {
    ctx.progress.phase('cleaning up');
    if (rig) {
      const failing = error !== undefined || out.checks.some((c) => !c.pass);
      if (failing && !ctx.signal.aborted) {
        out.evidence.push(...rig.fleet.grep(/"level":"(error|fatal)"|failed to start|SyntaxError/, 12));
        if (error) out.evidence.push(rig.fleet.tail(8));
      }
      if (ctx.logDir) {
        const dir = ctx.logDir;
        await rig.fleet.writeLogs(dir, `s${meta.id}-`).catch(() => undefined);
        for (const [name, data] of out.attachments) {
          await writeFile(join(dir, `s${meta.id}-${name}.json`), JSON.stringify(data)).catch(() => undefined);
        }
      }
      const running = rig.fleet.live();
      await rig.close().catch((err: unknown) => out.evidence.push(`cleanup: ${String(err)}`));
      // How the processes that survived the scenario took the final SIGTERM (0: a clean shutdown).
      const finalExits = running.map((p) => `${p.name}:${p.exit?.code ?? p.exit?.signal ?? '?'}`).join(' ');
      out.figure('exit codes on the final SIGTERM', finalExits || 'none running');
      const final = running.every((p) => p.exit?.code === 0) ? `end: all ${running.length} 0` : `end: ${finalExits}`;
      out.summary.exitCodes = out.summary.exitCodes ? `${out.summary.exitCodes}; ${final}` : final;
    }
  }
  return {
    ...meta,
    mongo: out.mongo,
    summary: out.summary,
    figures: out.figures,
    checks: out.checks,
    evidence: out.evidence,
    error,
    durationMs: Date.now() - started,
    pass: error === undefined && out.checks.length > 0 && out.checks.every((c) => c.pass),
  };
}
