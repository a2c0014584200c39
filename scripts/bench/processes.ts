import { readFile } from 'node:fs/promises';
import { startProcess, type RunningProcess } from '../lib/process-runner.js';

export { killAllChildren, type ExitStatus } from '../lib/process-runner.js';

/**
 * The processes the bench measures: the real api and worker (`dist/<service>/main.js`) and the bare
 * baselines (`dist/scripts/bench/bare-*.js`), all spawned the same way, with an IPC channel so
 * that each says `ready` (the real processes through `signalReady`, as they do for pm2).
 */

/** What a bare baseline sends over IPC while it works. */
export interface ProgressMessage {
  readonly type: 'progress';
  /** Jobs finished so far. */
  readonly done: number;
  /** Date.now() when the last one finished. */
  readonly lastAt: number;
}

export interface BenchProcess extends RunningProcess {
  /** The last progress message (bare workers), if any. */
  readonly progress: ProgressMessage | undefined;
  /** Resolves when the child has sent `ready`; rejects on exit or after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<void>;
  /** Resolves once a progress message reports at least `done` jobs; rejects on exit or timeout. */
  waitForDone(done: number, timeoutMs: number, onProgress?: (done: number) => void): Promise<ProgressMessage>;
  /** CPU time (user + system) the process has used so far, in ms. */
  cpuMs(): Promise<number>;
  /** Peak resident set size (VmHWM) so far, in bytes. */
  peakRss(): Promise<number>;
}

const LINES_KEPT = 2000;
/** Linux reports process CPU time in clock ticks; 100 per second on every mainstream kernel build. */
const CLOCK_TICKS_PER_SECOND = 100;

export async function readCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after "pid (comm) ": state is the first; utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

export async function readPeakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kb) * 1024;
}

/**
 * Runs `node [nodeArgs] <script>` (relative to the repository root) through the shared
 * {@link startProcess}, with an IPC channel. `nodeArgs` carries `--cpu-prof` (not allowed in NODE_OPTIONS).
 */
export function spawnNode(options: {
  readonly name: string;
  readonly script: string;
  readonly env: Record<string, string>;
  readonly nodeArgs?: readonly string[];
}): BenchProcess {
  let isReady = false;
  let progress: ProgressMessage | undefined;
  const messageListeners = new Set<() => void>();
  const proc = startProcess({
    ...options,
    maxLines: LINES_KEPT,
    onMessage: (message) => {
      if (message === 'ready') isReady = true;
      else if ((message as ProgressMessage)?.type === 'progress') progress = message as ProgressMessage;
      for (const listener of messageListeners) listener();
    },
  });
  const tail = () => proc.lines.slice(-15).join('\n');

  /** Resolves when `check()` holds after a message; rejects on exit or timeout. */
  function waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const now = check();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<T>((resolve, reject) => {
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        messageListeners.delete(listener);
        fn();
      };
      const listener = () => {
        const value = check();
        if (value !== undefined) finish(() => resolve(value));
      };
      const timer = setTimeout(
        () =>
          finish(() => reject(new Error(`${options.name}: no ${what} within ${timeoutMs} ms; last lines:\n${tail()}`))),
        timeoutMs,
      );
      messageListeners.add(listener);
      void proc.exited.then((status) => {
        if (messageListeners.has(listener)) {
          finish(() =>
            reject(
              new Error(`${options.name} exited (${JSON.stringify(status)}) before ${what}; last lines:\n${tail()}`),
            ),
          );
        }
      });
    });
  }

  return {
    ...proc,
    get progress() {
      return progress;
    },
    async ready(timeoutMs = 60_000) {
      await waitFor(() => (isReady ? true : undefined), timeoutMs, 'ready message');
    },
    waitForDone(done, timeoutMs, onProgress) {
      return waitFor(
        () => {
          if (progress) onProgress?.(progress.done);
          return progress && progress.done >= done ? progress : undefined;
        },
        timeoutMs,
        `${done} jobs done (${progress?.done ?? 0} so far)`,
      );
    },
    cpuMs: () => readCpuMs(proc.pid),
    peakRss: () => readPeakRss(proc.pid),
  };
}
