import { spawn } from 'node:child_process';
import { constants } from 'node:os';

const INNER = 'ORDER_FLEET_LAUNCHER_INNER';

/** `launcher`: carry on, in a process group of its own. `relay`: the launcher has ended; exit with `exitCode`. */
export type ProcessGroupRole = { readonly role: 'launcher' } | { readonly role: 'relay'; readonly exitCode: number };

/**
 * Re-runs the calling script in a process group of its own. Resolves at once with `launcher` in that
 * copy (or where there are no process groups), and with `relay` in the original once the copy has exited.
 *
 * Why: Ctrl-C in a terminal signals the terminal's whole foreground process group, so every process
 * a launcher started (api, workers, health, an embedded redis-server or mongod) gets SIGINT at the
 * same time as the launcher. When the launcher then sends its own SIGTERM, that is their second
 * signal, and a second signal means "exit now": no graceful shutdown, and the embedded Redis is gone
 * before the workers finish. So the launcher re-runs itself detached (new session and group, same
 * stdout and stderr); this outer copy forwards each SIGINT/SIGTERM (SIGHUP as SIGTERM) exactly once,
 * and reports the inner copy's exit status. The inner copy learns that the outer one is gone
 * (killed, terminal closed) from the IPC channel's `disconnect` event.
 */
export async function runInOwnProcessGroup(): Promise<ProcessGroupRole> {
  if (process.env[INNER] === '1') {
    delete process.env[INNER]; // the processes the inner copy starts must not inherit it
    return { role: 'launcher' };
  }
  // No process groups to escape there, and Ctrl-C reaches processes differently.
  if (process.platform === 'win32') return { role: 'launcher' };
  const inner = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [INNER]: '1' },
  });
  const forward = (signal: NodeJS.Signals, as: NodeJS.Signals = signal) =>
    process.on(signal, () => {
      if (inner.exitCode === null && inner.signalCode === null) inner.kill(as);
    });
  forward('SIGINT');
  forward('SIGTERM');
  forward('SIGHUP', 'SIGTERM');
  const exitCode = await new Promise<number>((resolve) => {
    inner.once('error', (err) => {
      process.stderr.write(`could not start the launcher: ${err.message}\n`);
      resolve(1);
    });
    inner.once('exit', (exitCode, signal) => resolve(exitCode ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  return { role: 'relay', exitCode };
}

/** True when this process was started by {@link runInOwnProcessGroup} and its outer copy is still there. */
export function hasLauncherParent(): boolean {
  return process.connected === true;
}
