import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

/**
 * The one way the scripts and the tests start a Node process of this repository (the compiled api,
 * worker and health, the bench's bare baselines) and watch its output: the dev launcher, the bench,
 * the fault battery and the end-to-end tests all go through {@link startProcess}.
 */

/** The repository root (this file runs as dist/scripts/lib/process-runner.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export type ServiceName = 'api' | 'worker' | 'health' | 'payment-sandbox';

/** The compiled entry point of each process: the three of the product, and the dev payment sandbox. */
const ENTRY: Readonly<Record<ServiceName, string>> = {
  api: 'dist/api/main.js',
  worker: 'dist/worker/main.js',
  health: 'dist/health/main.js',
  'payment-sandbox': 'dist/scripts/payment-sandbox.js',
};

/** The line each process writes once it can do its work. */
export const READY_LINE: Readonly<Record<ServiceName, RegExp>> = {
  api: /"msg":"MongoDB connected, indexes in place"/,
  worker: /"msg":"worker running"/,
  health: /"msg":"health listening on http:\/\/127\.0\.0\.1:\d+"/,
  'payment-sandbox': /"msg":"payment sandbox listening on http:\/\/127\.0\.0\.1:\d+/,
};

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunningProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Date.now() just before the spawn. */
  readonly spawnedAt: number;
  /** The lines the process wrote, stdout and stderr (the last `maxLines` when that was given). */
  readonly lines: string[];
  /** Resolves once the process exited and its output was read to the end. */
  readonly exited: Promise<ExitStatus>;
  /** Resolves with the first line (past or future) that matches; rejects after `timeoutMs` or on exit. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` and waits up to `timeoutMs` for the exit; SIGKILL after that. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitStatus>;
}

/** Every child still running; killed when this process exits, whatever the reason. */
const live = new Set<ChildProcess>();
process.once('exit', killAllChildren);

/** SIGKILL to every child started through this module that still runs (Ctrl-C, fatal errors). */
export function killAllChildren(): void {
  for (const child of live) child.kill('SIGKILL');
}

/**
 * Runs `node [nodeArgs] <script>` (relative to the repository root) with `env` added to this
 * process's environment. `onLine` sees each output line; with `onMessage`, the child gets an IPC
 * channel and each message it sends (`ready` from `signalReady`, the bench's progress) is passed on.
 */
export function startProcess(options: {
  readonly name: string;
  readonly script: string;
  /** Arguments of the script. */
  readonly args?: readonly string[];
  readonly env: Record<string, string>;
  readonly nodeArgs?: readonly string[];
  readonly onLine?: (line: string) => void;
  readonly onMessage?: (message: unknown) => void;
  /** Keep only the last this many lines (long runs); all by default. */
  readonly maxLines?: number;
}): RunningProcess {
  const { name } = options;
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.script, ...(options.args ?? [])], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: options.onMessage ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${name} (node ${options.script})`);
  live.add(child);
  if (options.onMessage) child.on('message', options.onMessage);
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream! }).on('line', (line) => {
      lines.push(line);
      if (options.maxLines !== undefined && lines.length > options.maxLines) {
        lines.splice(0, lines.length - options.maxLines);
      }
      options.onLine?.(line);
      for (const listener of listeners) listener(line);
    });
  }
  const exited = new Promise<ExitStatus>((resolve) => {
    // 'close' comes after the output streams ended, so the last lines are there when it resolves.
    child.once('close', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const tail = () => lines.slice(-15).join('\n');

  return {
    name,
    child,
    pid: child.pid,
    spawnedAt,
    lines,
    exited,
    waitForLine(pattern, timeoutMs = 20_000) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const finish = (fn: () => void) => {
          clearTimeout(timer);
          listeners.delete(listener);
          fn();
        };
        const timer = setTimeout(
          () =>
            finish(() =>
              reject(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms; last lines:\n${tail()}`)),
            ),
          timeoutMs,
        );
        const listener = (line: string) => {
          if (pattern.test(line)) finish(() => resolve(line));
        };
        listeners.add(listener);
        void exited.then((status) => {
          if (!listeners.has(listener)) return;
          finish(() =>
            reject(
              new Error(
                `${name} exited (${JSON.stringify(status)}) before a line matching ${pattern}; last lines:\n${tail()}`,
              ),
            ),
          );
        });
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Runs one of the compiled processes (`dist/<service>/main.js`, or the payment sandbox); see {@link startProcess}. */
export function startService(options: {
  readonly service: ServiceName;
  readonly name?: string;
  readonly env: Record<string, string>;
  readonly onLine?: (line: string) => void;
}): RunningProcess {
  return startProcess({ ...options, name: options.name ?? options.service, script: ENTRY[options.service] });
}

/**
 * {@link startService}, resolved once the process has written its {@link READY_LINE}; if it exits or
 * stays silent for `timeoutMs` it is killed and the error carries its last lines.
 */
export async function startReady(
  service: ServiceName,
  env: Record<string, string>,
  options: { readonly name?: string; readonly timeoutMs?: number; readonly onLine?: (line: string) => void } = {},
): Promise<RunningProcess> {
  const p = startService({ service, name: options.name, env, onLine: options.onLine });
  try {
    await p.waitForLine(READY_LINE[service], options.timeoutMs ?? 60_000);
  } catch (err) {
    await p.stop('SIGKILL');
    throw err;
  }
  return p;
}
