import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A backing service this process started, and how to stop it. */
export interface EmbeddedService {
  readonly url: string;
  readonly embedded: boolean;
  stop(): Promise<void>;
}

/** host and port of a redis:// or mongodb:// URL (first host only). */
export function hostPort(url: string, defaultPort: number): { host: string; port: number } {
  const rest = url.replace(/^[a-z+]+:\/\//, '').replace(/^[^@/]*@/, '');
  const hostPart = rest.split(/[/?,]/)[0] ?? '127.0.0.1';
  const [host, port] = hostPart.split(':');
  return { host: host || '127.0.0.1', port: port ? Number(port) : defaultPort };
}

/** True when a TCP connection to the URL's host and port opens within `timeoutMs`. */
export async function answers(url: string, defaultPort: number, timeoutMs = 1000): Promise<boolean> {
  const { host, port } = hostPort(url, defaultPort);
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

/**
 * A port nothing listens on, for a process started next to listen on. Drawn from 20000-31999, below
 * Linux's ephemeral range (32768-60999): a port the kernel hands out there (what `listen(0)` gives)
 * can be taken as the source port of any outgoing connection of a parallel test before the process
 * binds it, which failed a CI run with EADDRINUSE. Falls back to `listen(0)` when 100 draws are taken.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await portFree(port)) return port;
  }
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when a listener can bind `port` on every address (as the processes bind theirs) right now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, () => server.close(() => done(true)));
  });
}

function external(url: string): EmbeddedService {
  return { url, embedded: false, stop: async () => undefined };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
}

/**
 * Arguments of a private `redis-server`: loopback only, nothing saved to disk, and the eviction
 * policy BullMQ needs (`noeviction`). `extra` adds arguments (e.g. `--dir` for a restartable one).
 */
export function redisServerArgs(port: number, extra: readonly string[] = []): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--maxmemory-policy',
    'noeviction',
    ...extra,
  ];
}

/**
 * Runs `redis-server` with {@link redisServerArgs} on `port` and resolves with the child once the
 * port answers (the port of a server just stopped can take a moment to be free: `timeoutMs`).
 * `onSpawn` sees the child first (the fault battery registers it with its reaper).
 */
export async function spawnRedisServer(
  port: number,
  options: {
    readonly extraArgs?: readonly string[];
    readonly timeoutMs?: number;
    readonly onSpawn?: (child: ChildProcess) => void;
  } = {},
): Promise<ChildProcess> {
  const child = spawn('redis-server', redisServerArgs(port, options.extraArgs), { stdio: 'ignore' });
  options.onSpawn?.(child);
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) =>
      reject(
        new Error(
          `could not run redis-server (${err.message}). Install it (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis) or set REDIS_URL to a running Redis.`,
        ),
      ),
    );
  });
  failed.catch(() => undefined); // raced below; an error after the start is the caller's exit to see
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server on port ${port} exited during start`);
    }
    if (await Promise.race([answers(url, port, 200), failed])) return child;
    await sleep(100);
  }
  await stopChild(child);
  throw new Error(`redis-server did not listen on port ${port} within ${options.timeoutMs ?? 10_000} ms`);
}

/**
 * A throwaway `redis-server` from the PATH on a free port, in memory only, with the eviction policy
 * BullMQ needs (`noeviction`).
 */
export async function startRedisServer(): Promise<EmbeddedService> {
  const port = await freePort();
  const child = await spawnRedisServer(port);
  return { url: `redis://127.0.0.1:${port}`, embedded: true, stop: () => stopChild(child) };
}

/** A `mongod` this process started (see {@link startMongodServer}). */
export interface MongodServer {
  /** `mongodb://127.0.0.1:PORT` without a database name. */
  readonly baseUrl: string;
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

/**
 * A real `mongod` on loopback through mongodb-memory-server-core: downloaded on first use where the
 * machine can, or the binary named by MONGOMS_SYSTEM_BINARY. Fails with a message that says what to do.
 */
export async function startMongodServer(): Promise<MongodServer> {
  const { MongoMemoryServer } = await import('mongodb-memory-server-core');
  try {
    const server = await MongoMemoryServer.create({ instance: { ip: '127.0.0.1' } });
    return {
      baseUrl: server.getUri().replace(/\/[^/]*$/, ''),
      pid: server.instanceInfo?.instance.mongodProcess?.pid,
      stop: async () => void (await server.stop({ doCleanup: true, force: true })),
    };
  } catch (err) {
    throw new Error(
      [
        `could not start an embedded mongod (${err instanceof Error ? err.message.split('\n')[0] : String(err)}).`,
        'Do one of these:',
        '  - set MONGO_URL to a running MongoDB (e.g. mongodb://127.0.0.1:27017/orders);',
        '  - set MONGOMS_SYSTEM_BINARY to the path of a mongod binary (7.x);',
        '  - run on a machine that can download MongoDB (mongodb-memory-server fetches it on first use).',
      ].join('\n'),
    );
  }
}

/** {@link startMongodServer} as an embedded service, with the URL of database `dbName`. */
export async function startMongod(dbName: string): Promise<EmbeddedService> {
  const server = await startMongodServer();
  return { url: `${server.baseUrl}/${dbName}`, embedded: true, stop: server.stop };
}

/**
 * REDIS_URL when it answers, else an embedded redis-server. With `strict`, a set REDIS_URL that does
 * not answer is an error (the dev launcher); without, it falls back to an embedded one (the tests).
 */
export async function resolveRedis(env: NodeJS.ProcessEnv, options: { strict: boolean }): Promise<EmbeddedService> {
  if (env.REDIS_URL) {
    if (await answers(env.REDIS_URL, 6379)) return external(env.REDIS_URL);
    if (!options.strict) return startRedisServer();
    throw new Error(
      `REDIS_URL is set (${env.REDIS_URL.replace(/\/\/[^@/]*@/, '//***@')}) but nothing answers there. Start Redis or unset REDIS_URL.`,
    );
  }
  return startRedisServer();
}

/** MONGO_URL when it answers, else an embedded mongod; `strict` as for {@link resolveRedis}. */
export async function resolveMongo(
  env: NodeJS.ProcessEnv,
  dbName: string,
  options: { strict: boolean },
): Promise<EmbeddedService> {
  if (env.MONGO_URL) {
    if (await answers(env.MONGO_URL, 27017)) return external(env.MONGO_URL);
    if (!options.strict) return startMongod(dbName);
    throw new Error(
      `MONGO_URL is set (${env.MONGO_URL.replace(/\/\/[^@/]*@/, '//***@')}) but nothing answers there. Start MongoDB or unset MONGO_URL.`,
    );
  }
  return startMongod(dbName);
}

/** The same server URL with another database name (keeps credentials and options). */
export function withDatabase(mongoUrl: string, dbName: string): string {
  const url = new URL(mongoUrl);
  url.pathname = `/${dbName}`;
  return url.toString();
}
