import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort, spawnRedisServer, startMongodServer } from '../lib/embedded-services.js';
import { STANDIN_DIR, startStandin } from '../lib/mongo-standin.js';
import { track, untrack } from './reaper.js';

/**
 * Backing services that belong to one scenario alone. The battery stops, restarts and freezes them
 * (SIGSTOP/SIGCONT), which it must never do to the Redis and MongoDB other tests share.
 */

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

async function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (!running(child)) return true;
  const exited = new Promise<true>((done) => child.once('exit', () => done(true)));
  return Promise.race([exited, sleep(timeoutMs).then(() => false)]);
}

/** SIGCONT (a frozen process ignores SIGTERM), SIGTERM, and SIGKILL after `graceMs`. */
async function terminate(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (!running(child)) return;
  child.kill('SIGCONT');
  child.kill('SIGTERM');
  if (!(await waitExit(child, graceMs))) {
    child.kill('SIGKILL');
    await waitExit(child, 2000);
  }
}

/**
 * A `redis-server` of the battery's own: the flags of `startRedisServer` (memory only, `noeviction`)
 * plus a data directory, so that a stop can keep the data (`SHUTDOWN SAVE`, as a Redis with
 * persistence would) or lose it (a Redis that restarts empty), and a restart reuses the port.
 */
export class PrivateRedis {
  private child: ChildProcess;
  private frozen = false;

  private constructor(
    readonly port: number,
    private readonly dir: string,
    child: ChildProcess,
  ) {
    this.child = child;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get isRunning(): boolean {
    return running(this.child);
  }

  static async start(): Promise<PrivateRedis> {
    const port = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'chaos-redis-'));
    try {
      return new PrivateRedis(port, dir, await PrivateRedis.spawnOn(port, dir));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private static spawnOn(port: number, dir: string): Promise<ChildProcess> {
    return spawnRedisServer(port, {
      extraArgs: ['--dir', dir, '--dbfilename', 'dump.rdb'],
      // The port of a stopped server can take a moment to be free again: allow 15 s.
      timeoutMs: 15_000,
      onSpawn: (child) => {
        track(child.pid, `redis-server:${port}`);
        child.once('exit', () => untrack(child.pid));
      },
    });
  }

  /** SIGSTOP: the port stays open, connections stay up, nothing is answered. */
  freeze(): void {
    if (running(this.child)) this.child.kill('SIGSTOP');
    this.frozen = true;
  }

  thaw(): void {
    if (running(this.child)) this.child.kill('SIGCONT');
    this.frozen = false;
  }

  /**
   * Stops the server: `keepData` writes the dataset first (`SHUTDOWN SAVE`) so that {@link start}
   * brings it back, as a Redis with persistence would; otherwise the data is gone.
   */
  async stop(options: { readonly keepData: boolean }): Promise<void> {
    if (!running(this.child)) return;
    if (this.frozen) this.thaw();
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.call('SHUTDOWN', options.keepData ? 'SAVE' : 'NOSAVE').catch(() => undefined);
    } catch {
      // fall through to the signal
    } finally {
      client.disconnect();
    }
    if (!(await waitExit(this.child, 10_000))) await terminate(this.child);
    if (!options.keepData) await rm(join(this.dir, 'dump.rdb'), { force: true });
  }

  /** Starts the server again on the same port (with the saved data, if the stop kept it). */
  async start(): Promise<void> {
    if (running(this.child)) return;
    this.child = await PrivateRedis.spawnOn(this.port, this.dir);
    this.frozen = false;
  }

  /** Stops the server for good and removes its data directory. */
  async close(): Promise<void> {
    await terminate(this.child);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Which MongoDB a scenario runs against. */
export type MongoChoice = 'auto' | 'standin' | 'mongod';

/**
 * A MongoDB of the battery's own: a real `mongod` through mongodb-memory-server-core when one can
 * be had without a download (MONGOMS_SYSTEM_BINARY, or a binary already in its cache) or when asked
 * for explicitly; else the wire-protocol stand-in from `../shared/mongo-standin`. Both can be frozen.
 */
export class PrivateMongo {
  private frozen = false;

  private constructor(
    readonly kind: 'mongod' | 'standin',
    /** `mongodb://127.0.0.1:PORT` without a database name. */
    readonly baseUrl: string,
    readonly pid: number | undefined,
    private readonly stopServer: () => Promise<void>,
  ) {}

  /** The URL of database `name` on this server. */
  url(name: string): string {
    return `${this.baseUrl.replace(/\/+$/, '')}/${name}`;
  }

  /** A one-line description for the report. */
  get description(): string {
    return this.kind === 'mongod' ? 'private mongod (mongodb-memory-server-core)' : `private stand-in (${STANDIN_DIR})`;
  }

  static async start(choice: MongoChoice, env: NodeJS.ProcessEnv = {}): Promise<PrivateMongo> {
    if (choice === 'mongod' || (choice === 'auto' && (await PrivateMongo.mongodAvailable(env)))) {
      return PrivateMongo.startMongod();
    }
    return PrivateMongo.startStandin();
  }

  /** True when a mongod binary is at hand without downloading one. */
  static async mongodAvailable(env: NodeJS.ProcessEnv): Promise<boolean> {
    if (env.MONGOMS_SYSTEM_BINARY && existsSync(env.MONGOMS_SYSTEM_BINARY)) return true;
    try {
      const { DryMongoBinary } = await import('mongodb-memory-server-core');
      return (await DryMongoBinary.locateBinary(await DryMongoBinary.generateOptions())) !== undefined;
    } catch {
      return false;
    }
  }

  private static async startMongod(): Promise<PrivateMongo> {
    const { baseUrl, pid, stop } = await startMongodServer();
    track(pid, 'mongod');
    return new PrivateMongo('mongod', baseUrl, pid, async () => {
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGCONT'); // a frozen mongod cannot stop
        } catch {
          // gone already
        }
      }
      await stop().catch(() => undefined);
      untrack(pid);
    });
  }

  private static async startStandin(): Promise<PrivateMongo> {
    const { uri, child } = await startStandin();
    track(child.pid, 'mongo-standin');
    child.once('exit', () => untrack(child.pid));
    return new PrivateMongo('standin', uri, child.pid, () => terminate(child));
  }

  freeze(): void {
    if (this.pid === undefined) throw new Error('no pid to freeze');
    process.kill(this.pid, 'SIGSTOP');
    this.frozen = true;
  }

  thaw(): void {
    if (this.pid !== undefined && this.frozen) process.kill(this.pid, 'SIGCONT');
    this.frozen = false;
  }

  async close(): Promise<void> {
    this.thaw();
    await this.stopServer();
  }
}
