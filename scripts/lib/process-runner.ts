import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

/** The repository root (this file runs as dist/scripts/lib/process-runner.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export type ServiceName = 'api' | 'worker' | 'health';

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunningProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Every line the process wrote, stdout and stderr. */
  readonly lines: string[];
  readonly exited: Promise<ExitStatus>;
  /** Resolves with the first line (past or future) that matches; rejects after `timeoutMs` or on exit. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` and waits up to `timeoutMs` for the exit; SIGKILL after that. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitStatus>;
}

/**
 * Runs one of the compiled processes (`dist/<service>/main.js`) with `env` added to this process's
 * environment. `onLine` sees each output line (the dev launcher prefixes and prints them).
 */
export function startService(options: {
  readonly service: ServiceName;
  readonly name?: string;
  readonly env: Record<string, string>;
  readonly onLine?: (line: string) => void;
}): RunningProcess {
  const name = options.name ?? options.service;
  const child = spawn(process.execPath, [`dist/${options.service}/main.js`], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream! }).on('line', (line) => {
      lines.push(line);
      options.onLine?.(line);
      for (const listener of listeners) listener(line);
    });
  }
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  return {
    name,
    child,
    lines,
    exited,
    waitForLine(pattern, timeoutMs = 20_000) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(
            new Error(
              `${name}: no line matching ${pattern} within ${timeoutMs} ms; last lines:\n${lines.slice(-10).join('\n')}`,
            ),
          );
        }, timeoutMs);
        const listener = (line: string) => {
          if (!pattern.test(line)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolve(line);
        };
        listeners.add(listener);
        void exited.then((status) => {
          if (!listeners.has(listener)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          reject(
            new Error(
              `${name} exited (${JSON.stringify(status)}) before a line matching ${pattern}; last lines:\n${lines.slice(-10).join('\n')}`,
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
