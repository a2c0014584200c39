/**
 * Real Redis topologies on 127.0.0.1 for tests and the fault battery: a Sentinel group (1 master,
 * 1 replica, 3 sentinels) or a Redis Cluster (3 masters, 3 replicas, made by `redis-cli --cluster
 * create`), each in a temp dir of its own, on a block of free ports from `basePort` on. Every
 * `redis-server` started here is killed when this process exits, even when a test fails before its
 * teardown; {@link RedisTopologyProcesses.stop} is the orderly way (bounded).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { answers, portFree, spawnRedisServer } from './embedded-services.js';

/** One `redis-server` (data node or sentinel) of a topology. */
export interface RedisNode {
  readonly port: number;
  readonly role: 'data' | 'sentinel';
  readonly pid: number | undefined;
  readonly running: boolean;
  /** SIGKILL (a crash: nothing saved, no goodbye to replicas or sentinels); resolves once it exited. */
  kill(): Promise<void>;
}

export interface RedisTopologyProcesses {
  readonly kind: 'sentinel' | 'cluster';
  /** The variables that point the fleet at this topology (`REDIS_URL` emptied: one topology only). */
  readonly env: Readonly<Record<string, string>>;
  readonly dataNodes: readonly RedisNode[];
  readonly sentinels: readonly RedisNode[];
  /** The master that serves `key` now: the Sentinels' master, or the Cluster node owning its slot. */
  masterFor(key: string): Promise<RedisNode>;
  /**
   * Polls until a node other than `old` is the master for `key` and takes writes; resolves with it.
   * Rejects after `timeoutMs`.
   */
  waitForNewMaster(key: string, old: RedisNode, timeoutMs?: number): Promise<RedisNode>;
  /** Stops every process (SIGKILL after a short grace) and removes the temp dir. */
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
let exitHookInstalled = false;

function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Synchronous last resort: nothing started here may outlive the test process.
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

async function killChild(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGCONT');
  child.kill(signal);
  await Promise.race([exited, sleep(graceMs)]);
  if (isRunning(child)) {
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(2000)]);
  }
}

function node(port: number, role: RedisNode['role'], child: ChildProcess): RedisNode {
  return {
    port,
    role,
    pid: child.pid,
    get running() {
      return isRunning(child);
    },
    kill: () => killChild(child, 'SIGKILL', 2000),
  };
}

/**
 * The first block of `count` consecutive free ports at or above `basePort` (with `bus`, port+10000
 * must be free too: a Cluster node's bus port). Searches at most `span` ports.
 */
export async function freePortBlock(basePort: number, count: number, options: { bus?: boolean; span?: number } = {}) {
  const span = options.span ?? 400;
  for (let start = basePort; start + count <= basePort + span; start += count) {
    const ports = Array.from({ length: count }, (_, i) => start + i);
    const checks = await Promise.all(
      ports.map(async (p) => (await portFree(p)) && (!options.bus || (await portFree(p + 10_000)))),
    );
    if (checks.every(Boolean)) return ports;
  }
  throw new Error(`no ${count} free consecutive ports in ${basePort}-${basePort + span - 1}`);
}

/** A short-lived client to one node (no retries: a dead node is an answer). */
async function withClient<T>(port: number, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
    commandTimeout: 2000,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

async function pollUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  throw new Error(`${what} not within ${timeoutMs} ms${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
}

async function startDataNode(dir: string, port: number, extra: readonly string[]): Promise<RedisNode> {
  const child = await spawnRedisServer(port, {
    extraArgs: ['--dir', dir, '--dbfilename', `dump-${port}.rdb`, ...extra],
    timeoutMs: 15_000,
    onSpawn: trackChild,
  });
  return node(port, 'data', child);
}

async function startSentinel(
  dir: string,
  port: number,
  masterName: string,
  masterPort: number,
  options: SentinelOptions,
) {
  const conf = join(dir, `sentinel-${port}.conf`);
  await writeFile(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${masterName} ${options.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${masterName} ${options.failoverTimeoutMs ?? 4000}`,
      `sentinel parallel-syncs ${masterName} 1`,
      '',
    ].join('\n'),
  );
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  trackChild(child);
  await pollUntil(`sentinel on port ${port} answering`, 15_000, async () => {
    if (!isRunning(child)) throw new Error(`sentinel on port ${port} exited during start`);
    return (await answers(`redis://127.0.0.1:${port}`, port, 300)) ? true : undefined;
  });
  return node(port, 'sentinel', child);
}

export interface SentinelOptions {
  /** First port to try (5 consecutive ports are used: master, replica, 3 sentinels). */
  readonly basePort: number;
  readonly masterName?: string;
  /** `sentinel down-after-milliseconds` (default 1000). */
  readonly downAfterMs?: number;
  /** `sentinel failover-timeout` (default 4000). */
  readonly failoverTimeoutMs?: number;
}

/** 1 master + 1 replica + 3 sentinels (quorum 2), all watched until the group knows itself. */
export async function startSentinelTopology(options: SentinelOptions): Promise<RedisTopologyProcesses> {
  const masterName = options.masterName ?? 'orders';
  const ports = await freePortBlock(options.basePort, 5);
  const dir = await mkdtemp(join(tmpdir(), 'redis-sentinel-'));
  const started: RedisNode[] = [];
  try {
    const master = await startDataNode(dir, ports[0], []);
    started.push(master);
    const replica = await startDataNode(dir, ports[1], ['--replicaof', '127.0.0.1', String(ports[0])]);
    started.push(replica);
    await pollUntil('the replica in sync', 20_000, () =>
      withClient(replica.port, async (c) =>
        /master_link_status:up/.test(await c.info('replication')) ? true : undefined,
      ),
    );
    const sentinels = await Promise.all(
      ports.slice(2).map((p) => startSentinel(dir, p, masterName, master.port, options)),
    );
    started.push(...sentinels);
    // Sentinels find the replica through the master and each other through its hello channel (every 2 s).
    await pollUntil('the sentinels to know the replica and each other', 30_000, async () => {
      const views = await Promise.all(
        sentinels.map((s) =>
          withClient(s.port, async (c) => {
            const flat = (await c.call('SENTINEL', 'MASTER', masterName)) as string[];
            const m = new Map<string, string>();
            for (let i = 0; i + 1 < flat.length; i += 2) m.set(flat[i], flat[i + 1]);
            return m.get('num-slaves') === '1' && m.get('num-other-sentinels') === '2';
          }),
        ),
      );
      return views.every(Boolean) ? true : undefined;
    });
    const dataNodes = [master, replica];
    const byPort = (port: number) => {
      const found = dataNodes.find((n) => n.port === port);
      if (!found) throw new Error(`the sentinels name an unknown master on port ${port}`);
      return found;
    };
    const currentMaster = async (): Promise<RedisNode> => {
      for (const s of sentinels.filter((x) => x.running)) {
        const addr = await withClient(s.port, (c) => c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)).catch(
          () => undefined,
        );
        if (Array.isArray(addr)) return byPort(Number(addr[1]));
      }
      throw new Error('no sentinel answered');
    };
    return {
      kind: 'sentinel',
      env: {
        REDIS_URL: '',
        REDIS_SENTINELS: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
        REDIS_SENTINEL_NAME: masterName,
      },
      dataNodes,
      sentinels,
      masterFor: () => currentMaster(),
      waitForNewMaster: (_key, old, timeoutMs = 30_000) =>
        pollUntil('a new master elected by the sentinels', timeoutMs, async () => {
          const now = await currentMaster();
          if (now.port === old.port || !now.running) return undefined;
          const role = await withClient(now.port, (c) => c.call('ROLE') as Promise<unknown[]>);
          return role[0] === 'master' ? now : undefined;
        }),
      stop: () => stopAll(started, dir),
    };
  } catch (err) {
    await stopAll(started, dir);
    throw err;
  }
}

export interface ClusterOptions {
  /** First port to try (6 consecutive ports, and their bus ports +10000). */
  readonly basePort: number;
  /** `cluster-node-timeout` (default 1500): how soon a silent master counts as failed. */
  readonly nodeTimeoutMs?: number;
}

interface ClusterNodeLine {
  readonly port: number;
  readonly master: boolean;
  readonly failed: boolean;
  readonly slots: Array<readonly [number, number]>;
}

function parseClusterNodes(text: string): ClusterNodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const parts = line.split(' ');
      const flags = parts[2].split(',');
      const slots = parts
        .slice(8)
        .filter((s) => /^\d+(-\d+)?$/.test(s))
        .map((s) => {
          const [from, to] = s.split('-').map(Number);
          return [from, to ?? from] as const;
        });
      return {
        port: Number(/:(\d+)@/.exec(parts[1])?.[1]),
        master: flags.includes('master'),
        failed: flags.includes('fail') || flags.includes('fail?'),
        slots,
      };
    });
}

/** 3 masters + 3 replicas (`redis-cli --cluster create … --cluster-replicas 1`), every slot served. */
export async function startClusterTopology(options: ClusterOptions): Promise<RedisTopologyProcesses> {
  const ports = await freePortBlock(options.basePort, 6, { bus: true });
  const dir = await mkdtemp(join(tmpdir(), 'redis-cluster-'));
  const started: RedisNode[] = [];
  try {
    const dataNodes = await Promise.all(
      ports.map((p) =>
        startDataNode(dir, p, [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          `nodes-${p}.conf`,
          '--cluster-node-timeout',
          String(options.nodeTimeoutMs ?? 1500),
          // A replica may always take over (its data is never "too old" on a test machine).
          '--cluster-replica-validity-factor',
          '0',
        ]),
      ),
    );
    started.push(...dataNodes);
    await runRedisCli([
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ]);
    await pollUntil('every cluster node to report cluster_state:ok', 30_000, async () => {
      const oks = await Promise.all(
        dataNodes.map((n) =>
          withClient(n.port, async (c) => {
            const info = (await c.call('CLUSTER', 'INFO')) as string;
            const nodes = parseClusterNodes((await c.call('CLUSTER', 'NODES')) as string);
            return /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info) && nodes.length === 6;
          }),
        ),
      );
      return oks.every(Boolean) ? true : undefined;
    });
    await pollUntil('every replica in sync with its master', 30_000, async () => {
      const synced = await Promise.all(
        dataNodes.map((n) =>
          withClient(n.port, async (c) => {
            const info = await c.info('replication');
            return /role:master/.test(info) || /master_link_status:up/.test(info);
          }),
        ),
      );
      return synced.every(Boolean) ? true : undefined;
    });
    const ownerOf = async (key: string): Promise<RedisNode> => {
      for (const n of dataNodes.filter((x) => x.running)) {
        const found = await withClient(n.port, async (c) => {
          const slot = (await c.call('CLUSTER', 'KEYSLOT', key)) as number;
          const lines = parseClusterNodes((await c.call('CLUSTER', 'NODES')) as string);
          const owner = lines.find((l) => l.master && !l.failed && l.slots.some(([a, b]) => slot >= a && slot <= b));
          return owner && dataNodes.find((d) => d.port === owner.port);
        }).catch(() => undefined);
        if (found) return found;
      }
      throw new Error(`no live cluster node named the owner of ${key}'s slot`);
    };
    return {
      kind: 'cluster',
      env: { REDIS_URL: '', REDIS_CLUSTER_NODES: ports.map((p) => `127.0.0.1:${p}`).join(',') },
      dataNodes,
      sentinels: [],
      masterFor: ownerOf,
      waitForNewMaster: (key, old, timeoutMs = 30_000) =>
        pollUntil(`a replica promoted for ${key}'s slot`, timeoutMs, async () => {
          const now = await ownerOf(key);
          if (now.port === old.port) return undefined;
          const ok = await withClient(now.port, async (c) => {
            const role = (await c.call('ROLE')) as unknown[];
            return role[0] === 'master' && /cluster_state:ok/.test((await c.call('CLUSTER', 'INFO')) as string);
          });
          return ok ? now : undefined;
        }),
      stop: () => stopAll(started, dir),
    };
  } catch (err) {
    await stopAll(started, dir);
    throw err;
  }
}

function runRedisCli(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', (err) => reject(new Error(`could not run redis-cli (${err.message})`)));
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`redis-cli ${args.slice(0, 2).join(' ')} exited ${code}:\n${output.slice(-2000)}`));
    });
  });
}

async function stopAll(nodes: readonly RedisNode[], dir: string): Promise<void> {
  // Sentinels first, so that they do not fail over a master being stopped.
  await Promise.all(nodes.filter((n) => n.role === 'sentinel').map((n) => n.kill()));
  await Promise.all(nodes.filter((n) => n.role === 'data').map((n) => n.kill()));
  await rm(dir, { recursive: true, force: true });
}
