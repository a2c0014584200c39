import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { REPO_ROOT } from './process-runner.js';

/**
 * The MongoDB wire-protocol stand-in (`../shared/mongo-standin`, test infrastructure beside the
 * repository) as a private server of the bench or the fault battery. Its folder is read-only in CI
 * and its packages are there only when something installed them; when they are not, the stand-in's
 * code and lock file are copied into a folder of its own under the OS temp dir (never into the
 * repository) and `npm ci --omit=dev` runs there, once per version of the stand-in.
 */

/** Where the stand-in lives. */
export const STANDIN_DIR = resolve(REPO_ROOT, '..', 'shared', 'mongo-standin');

const PACKAGES = ['bson', 'mingo'] as const;
const INSTALL_TIMEOUT_MS = 180_000;

function installed(dir: string): boolean {
  return PACKAGES.every((name) => existsSync(join(dir, 'node_modules', name, 'package.json')));
}

/** The stand-in's own files: server.js, lib/*.js and the package files (not its tests or packages). */
async function standinFiles(dir: string): Promise<string[]> {
  const lib = (await readdir(join(dir, 'lib'))).filter((f) => f.endsWith('.js')).map((f) => join('lib', f));
  return ['server.js', 'package.json', 'package-lock.json', ...lib.sort()];
}

/**
 * The path of a `server.js` whose packages are installed: the stand-in's own when its folder has
 * them, else a copy's (installed on first use). Throws a message saying what to do when neither can be had.
 */
export async function standinServer(
  options: { readonly standinDir?: string; readonly cacheRoot?: string } = {},
): Promise<string> {
  const source = options.standinDir ?? STANDIN_DIR;
  if (!existsSync(join(source, 'server.js'))) {
    throw new Error(`no MongoDB stand-in at ${source} (and no mongod binary); set MONGOMS_SYSTEM_BINARY`);
  }
  // The real path: the stand-in runs its server only when started by its own file name.
  if (installed(source)) return realpathSync(join(source, 'server.js'));

  const files = await standinFiles(source);
  const hash = createHash('sha256');
  for (const file of files) hash.update(file).update(await readFile(join(source, file)));
  const root = options.cacheRoot ?? tmpdir();
  const target = join(root, `order-fleet-mongo-standin-${hash.digest('hex').slice(0, 16)}`);
  if (installed(target)) return realpathSync(join(target, 'server.js'));

  // Installed in a staging folder and renamed into place, so concurrent test processes never use a
  // half-installed copy (the loser of the rename race drops its own).
  await mkdir(root, { recursive: true });
  const staging = await mkdtemp(`${target}.staging-`);
  try {
    await mkdir(join(staging, 'lib'));
    for (const file of files) await writeFile(join(staging, file), await readFile(join(source, file)));
    await promisify(execFile)('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: staging,
      timeout: INSTALL_TIMEOUT_MS,
    }).catch((err: Error & { stderr?: string }) => {
      const reason = (err.stderr ?? err.message).trim().split('\n').slice(-3).join(' ');
      throw new Error(
        `the stand-in's dependencies are missing in ${source}, and installing them into a copy at ${staging} ` +
          `failed (npm ci --omit=dev: ${reason}). Run (cd ${source} && npm ci --omit=dev), ` +
          'or set MONGOMS_SYSTEM_BINARY to a mongod binary.',
      );
    });
    await rename(staging, target).catch(async (err: NodeJS.ErrnoException) => {
      if (!installed(target)) throw err;
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return realpathSync(join(target, 'server.js'));
}

/** A stand-in this process started. */
export interface StandinProcess {
  /** `mongodb://127.0.0.1:PORT` (no database name). */
  readonly uri: string;
  readonly child: ChildProcess;
  readonly server: string;
}

/**
 * Starts a private stand-in on a free loopback port and resolves once it listens. `onStderrLine`
 * sees its log (with `verbose`, one line per command: how the bench counts them).
 */
export async function startStandin(
  options: {
    readonly verbose?: boolean;
    readonly onStderrLine?: (line: string) => void;
    readonly standinDir?: string;
    readonly cacheRoot?: string;
    readonly timeoutMs?: number;
  } = {},
): Promise<StandinProcess> {
  const server = await standinServer(options);
  const args = [server, '--port', '0', '--host', '127.0.0.1', ...(options.verbose ? ['--verbose'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (output.length < 50) output.push(line);
    options.onStderrLine?.(line);
  });
  const timeoutMs = options.timeoutMs ?? 20_000;
  try {
    const uri = await new Promise<string>((done, fail) => {
      const timer = setTimeout(
        () => fail(new Error(`the stand-in did not start in ${timeoutMs} ms:\n${output.join('\n')}`)),
        timeoutMs,
      );
      createInterface({ input: child.stdout! }).on('line', (line) => {
        output.push(line);
        const match = /listening on (mongodb:\/\/\S+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          done(match[1].replace(/\/+$/, ''));
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`the stand-in exited (${code}) during start:\n${output.join('\n')}`));
      });
    });
    return { uri, child, server };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}
