/**
 * Every process the fault battery starts is tracked here, so that nothing outlives the battery: a
 * scenario stops its own processes in `finally`, and whatever is still running when this process
 * exits (a crash, a second Ctrl-C) is killed on the spot. A frozen process (SIGSTOP) ignores SIGTERM
 * until it is continued, so it is sent SIGCONT first.
 */
const tracked = new Map<number, string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Remembers `pid` (named `name` in messages) until {@link untrack}. */
export function track(pid: number | undefined, name: string): void {
  if (pid !== undefined) tracked.set(pid, name);
}

export function untrack(pid: number | undefined): void {
  if (pid !== undefined) tracked.delete(pid);
}

/** The processes still tracked and alive, by pid. */
export function trackedProcesses(): Array<{ pid: number; name: string }> {
  return [...tracked].filter(([pid]) => alive(pid)).map(([pid, name]) => ({ pid, name }));
}

/** Synchronous last resort (safe in an `exit` handler): SIGCONT then SIGKILL to every tracked process. */
export function killAllNow(): number {
  let killed = 0;
  for (const [pid] of tracked) {
    if (!alive(pid)) continue;
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
      killed += 1;
    } catch {
      // already gone
    }
  }
  tracked.clear();
  return killed;
}

process.once('exit', () => {
  killAllNow();
});
