import { setTimeout as sleep } from 'node:timers/promises';
import { startService, type ExitStatus, type RunningProcess } from './process-runner.js';

/** Why the supervised set is being stopped: the first of these wins. */
export type StopReason =
  | { readonly kind: 'signal'; readonly signal: string }
  | { readonly kind: 'exited'; readonly name: string; readonly status: ExitStatus }
  | { readonly kind: 'failed'; readonly error: unknown };

/** Thrown by {@link Supervisor.untilStop} when a stop was requested before the awaited work finished. */
export class StopRequested extends Error {
  constructor(readonly reason: StopReason) {
    super(`stop requested (${reason.kind})`);
    this.name = 'StopRequested';
  }
}

/** Anything with an asynchronous stop, such as an embedded Redis or mongod. */
export interface Stoppable {
  stop(): Promise<void>;
}

export interface StoppedProcess {
  readonly name: string;
  readonly status: ExitStatus;
}

export interface Supervisor {
  /** Resolves with the first stop request. */
  readonly stopRequested: Promise<StopReason>;
  requestStop(reason: StopReason): void;
  /** Starts a process; if it exits before a stop was requested, that requests one. */
  start(options: Parameters<typeof startService>[0]): RunningProcess;
  /**
   * Stops `proc` (SIGTERM, bounded by `stopTimeoutMs`) and starts it again with the same options; its
   * exit does not stop the others. Resolves with the new process.
   */
  restart(proc: RunningProcess): Promise<RunningProcess>;
  /** `work`'s result, unless a stop is requested first: then rejects with {@link StopRequested}. */
  untilStop<T>(work: Promise<T>): Promise<T>;
  /**
   * {@link Supervisor.untilStop} for a service that must be stopped at the end. The service is
   * stopped even when it finishes starting after a stop was requested.
   */
  acquire<T extends Stoppable>(work: Promise<T>): Promise<T>;
  /**
   * SIGTERM to every process, a wait bounded by `stopTimeoutMs` (SIGKILL after it), then the acquired
   * services, last acquired first. Resolves with each process's exit status.
   */
  shutdown(): Promise<StoppedProcess[]>;
  /** SIGKILL to every process, then the acquired services (bounded to a few seconds). */
  kill(): Promise<void>;
}

export function describeExit(status: ExitStatus): string {
  return status.signal ? `signal ${status.signal}` : `code ${status.code}`;
}

/**
 * Owns the processes and embedded services of a local run, and stops them together: on request, or
 * as soon as one process exits on its own (in a local run that is always a failure).
 */
export function createSupervisor(options: {
  readonly stopTimeoutMs: number;
  readonly say: (text: string) => void;
  /**
   * Watch mode: a process that exits on its own is reported, and the others run on (the next save
   * restarts it); by default its exit stops everything.
   */
  readonly keepGoing?: boolean;
}): Supervisor {
  const { say } = options;
  const processes: RunningProcess[] = [];
  const startOptions = new Map<RunningProcess, Parameters<typeof startService>[0]>();
  const restarting = new Set<RunningProcess>();
  const services: Stoppable[] = [];
  const acquiring = new Set<Promise<unknown>>();
  let reason: StopReason | undefined;
  let resolveStop: (reason: StopReason) => void = () => undefined;
  const stopRequested = new Promise<StopReason>((resolve) => {
    resolveStop = resolve;
  });

  const requestStop = (next: StopReason): void => {
    if (reason) return;
    reason = next;
    resolveStop(next);
  };

  const untilStop = <T>(work: Promise<T>): Promise<T> =>
    Promise.race([
      work,
      stopRequested.then((r) => {
        throw new StopRequested(r);
      }),
    ]);

  const { stopTimeoutMs } = options;
  function start(procOptions: Parameters<typeof startService>[0]): RunningProcess {
    const proc = startService(procOptions);
    processes.push(proc);
    startOptions.set(proc, procOptions);
    void proc.exited.then((status) => {
      if (reason || restarting.has(proc)) return; // stopping or restarting: this exit is expected
      if (options.keepGoing) {
        say(`${proc.name} exited (${describeExit(status)}); the next change restarts it`);
        return;
      }
      say(`${proc.name} exited unexpectedly (${describeExit(status)}); stopping the others`);
      requestStop({ kind: 'exited', name: proc.name, status });
    });
    return proc;
  }

  const stopServices = async (): Promise<void> => {
    for (const service of services.splice(0).reverse()) {
      await service.stop().catch((err: unknown) => say(`could not stop a service: ${errorMessage(err)}`));
    }
  };

  return {
    stopRequested,
    requestStop,
    untilStop,

    start,

    async restart(proc) {
      const procOptions = startOptions.get(proc);
      if (!procOptions) throw new Error(`${proc.name} was not started by this supervisor`);
      restarting.add(proc);
      await proc.stop('SIGTERM', stopTimeoutMs);
      processes.splice(processes.indexOf(proc), 1);
      startOptions.delete(proc);
      restarting.delete(proc);
      if (reason) throw new StopRequested(reason);
      return start(procOptions);
    },

    acquire(work) {
      const registered = work.then((service) => {
        services.push(service);
        return service;
      });
      const settled = registered.then(
        () => undefined,
        () => undefined,
      );
      acquiring.add(settled);
      void settled.then(() => acquiring.delete(settled));
      return untilStop(registered);
    },

    async shutdown() {
      const running = processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
      if (running.length > 0) {
        say(
          `sending SIGTERM to ${running.map((p) => p.name).join(', ')}; ` +
            `SIGKILL after ${Math.round(stopTimeoutMs / 1000)} s (Ctrl-C again to kill now)`,
        );
      }
      // `exited` resolves once each process's output is read to the end.
      const stopped = await Promise.all(
        processes.map(async (p) => ({ name: p.name, status: await p.stop('SIGTERM', stopTimeoutMs) })),
      );
      if (acquiring.size > 0) say('waiting for a service that is still starting, to stop it');
      await Promise.all(acquiring);
      await stopServices();
      return stopped;
    },

    async kill() {
      for (const p of processes) {
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      }
      await Promise.race([stopServices(), sleep(3000)]);
    },
  };
}

/**
 * The first SIGINT, SIGTERM or SIGHUP requests a stop; the second calls `onSecondSignal` (kill at
 * once). When the launcher runs under a relay (see process-group.ts), losing the relay is a stop too.
 */
export function handleStopSignals(
  supervisor: Supervisor,
  options: { readonly say: (text: string) => void; readonly onSecondSignal: () => void },
): void {
  let signals = 0;
  const onSignal = (signal: string) => {
    signals += 1;
    if (signals === 1) {
      options.say(`${signal}: stopping everything`);
      supervisor.requestStop({ kind: 'signal', signal });
    } else {
      options.say(`${signal} again: killing everything now`);
      options.onSecondSignal();
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => onSignal(signal));
  if (process.connected) process.once('disconnect', () => onSignal('parent process gone'));
}

/** An error's message without its stack: what a person at the terminal needs to act on. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
