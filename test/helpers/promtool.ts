import { spawn } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import { REPO_ROOT } from '../../scripts/lib/process-runner.js';

/** What a promtool run printed (stdout and stderr together) and its exit code. */
export interface PromtoolRun {
  readonly code: number | null;
  readonly output: string;
}

/** Runs promtool with `args` (and `input` on stdin) from `cwd` (the project root by default); bounded, so a stuck run fails the test. */
export function promtool(args: readonly string[], input?: string, cwd = REPO_ROOT): Promise<PromtoolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { cwd, stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
    child.stdin.end(input ?? '');
  });
}

/** Fails the test (never skips it) when promtool is not installed. */
export async function requirePromtool(t: ExecutionContext): Promise<void> {
  const version = await promtool(['--version']).catch((err: NodeJS.ErrnoException) => {
    throw new Error(
      `promtool is not installed (${err.code ?? err.message}): these checks need it. ` +
        'Install it with `bash .ci/install-prometheus.sh` (Debian package `prometheus`).',
    );
  });
  t.is(version.code, 0, version.output);
}
