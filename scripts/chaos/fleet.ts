import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../lib/embedded-services.js';
import {
  READY_LINE,
  startService,
  type ExitStatus,
  type RunningProcess,
  type ServiceName,
} from '../lib/process-runner.js';
import { track, untrack } from './reaper.js';

/** One process of the fleet and how it ended, if it did. */
export interface FleetProcess {
  readonly name: string;
  readonly service: ServiceName;
  readonly proc: RunningProcess;
  readonly startedAt: number;
  /** Set when the battery itself killed or stopped it (so its exit is expected). */
  stoppedOnPurpose: boolean;
  exit?: ExitStatus & { readonly at: number };
}

/**
 * The system's real processes (`node dist/<service>/main.js`) against a scenario's private Redis and
 * MongoDB: one api, one health process and any number of workers, each on a free port.
 */
export class ChaosFleet {
  readonly processes: FleetProcess[] = [];
  private workerCount = 0;

  private constructor(
    readonly env: Readonly<Record<string, string>>,
    readonly apiUrl: string,
    readonly healthUrl: string,
  ) {}

  static async create(env: Record<string, string>): Promise<ChaosFleet> {
    const [apiPort, healthPort] = await Promise.all([freePort(), freePort()]);
    return new ChaosFleet(
      {
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        WORKER_METRICS_PORT: '0',
        ...env,
        API_PORT: String(apiPort),
        HEALTH_PORT: String(healthPort),
      },
      `http://127.0.0.1:${apiPort}`,
      `http://127.0.0.1:${healthPort}`,
    );
  }

  /** Starts a process; with `wait`, resolves once it wrote its ready line (throws after `timeoutMs`). */
  async start(
    service: ServiceName,
    options: { name?: string; env?: Record<string, string>; wait?: boolean; timeoutMs?: number } = {},
  ): Promise<FleetProcess> {
    const name = options.name ?? service;
    const proc = startService({ service, name, env: { ...this.env, ...options.env } });
    track(proc.child.pid, name);
    const entry: FleetProcess = { name, service, proc, startedAt: Date.now(), stoppedOnPurpose: false };
    this.processes.push(entry);
    void proc.exited.then((status) => {
      untrack(proc.child.pid);
      entry.exit = { ...status, at: Date.now() };
    });
    if (options.wait !== false) await proc.waitForLine(READY_LINE[service], options.timeoutMs ?? 60_000);
    return entry;
  }

  /** Starts worker `worker-N`. */
  startWorker(options: { env?: Record<string, string>; wait?: boolean } = {}): Promise<FleetProcess> {
    this.workerCount += 1;
    return this.start('worker', { ...options, name: `worker-${this.workerCount}` });
  }

  /** Starts api, health and `workers` workers together; resolves when all are ready. */
  async startAll(workers: number, options: { api?: boolean; health?: boolean } = {}): Promise<void> {
    await Promise.all([
      options.api === false ? undefined : this.start('api'),
      options.health === false ? undefined : this.start('health'),
      ...Array.from({ length: workers }, () => this.startWorker()),
    ]);
  }

  /** Processes still running, optionally of one service. */
  live(service?: ServiceName): FleetProcess[] {
    return this.processes.filter(
      (p) => !p.exit && p.proc.child.exitCode === null && (!service || p.service === service),
    );
  }

  /** Whether a process is running and has written its ready line. */
  isReady(p: FleetProcess): boolean {
    return !p.exit && p.proc.lines.some((l) => READY_LINE[p.service].test(l));
  }

  /** SIGKILL, no chance to clean up: the crash a supervisor restarts from. */
  async kill(p: FleetProcess): Promise<ExitStatus> {
    p.stoppedOnPurpose = true;
    return p.proc.stop('SIGKILL', 5000);
  }

  /** Sends `signal` and waits up to `timeoutMs` (then SIGKILL). */
  async stop(p: FleetProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<ExitStatus> {
    p.stoppedOnPurpose = true;
    return p.proc.stop(signal, timeoutMs);
  }

  /** Processes that exited without the battery asking them to. */
  unexpectedExits(): FleetProcess[] {
    return this.processes.filter((p) => p.exit && !p.stoppedOnPurpose);
  }

  /** Lines of every process matching `pattern`, prefixed with the process name. */
  grep(pattern: RegExp, limit = 20): string[] {
    const found: string[] = [];
    for (const p of this.processes) {
      for (const line of p.proc.lines) {
        if (pattern.test(line)) found.push(`${p.name}: ${line}`);
        if (found.length >= limit) return found;
      }
    }
    return found;
  }

  /** How many lines of all processes match `pattern`. */
  count(pattern: RegExp): number {
    return this.processes.reduce((n, p) => n + p.proc.lines.filter((l) => pattern.test(l)).length, 0);
  }

  /** The parsed JSON log lines of every process whose `msg` is `msg`. */
  entries(msg: string): Record<string, unknown>[] {
    const found: Record<string, unknown>[] = [];
    for (const p of this.processes) {
      for (const line of p.proc.lines) {
        if (!line.startsWith('{') || !line.includes(msg)) continue;
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (entry.msg === msg) found.push(entry);
        } catch {
          // not a log line
        }
      }
    }
    return found;
  }

  /** The last `count` lines of every process, for a failure report. */
  tail(count = 15): string {
    return this.processes
      .map((p) => `----- ${p.name} (${p.proc.lines.length} lines) -----\n${p.proc.lines.slice(-count).join('\n')}`)
      .join('\n');
  }

  /** Writes each process's full output to `dir/<prefix><name>.log`. */
  async writeLogs(dir: string, prefix: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await Promise.all(
      this.processes.map((p) => writeFile(join(dir, `${prefix}${p.name}.log`), `${p.proc.lines.join('\n')}\n`)),
    );
  }

  /** SIGTERM to everything still running (SIGKILL after `timeoutMs`). */
  async stopAll(timeoutMs = 15_000): Promise<void> {
    await Promise.all(this.live().map((p) => this.stop(p, 'SIGTERM', timeoutMs)));
  }
}
