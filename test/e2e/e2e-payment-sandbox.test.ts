import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The compiled sandbox as `node dist/scripts/payment-sandbox.js` runs it, with `env` added. */
function startSandbox(env: Record<string, string>) {
  const child = spawn(process.execPath, ['dist/scripts/payment-sandbox.js'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr])
    createInterface({ input: stream }).on('line', (l) => lines.push(l));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, lines, exited };
}

test('when the sandbox runs, then it serves charges on its port and exits 0 on SIGTERM with an answer still held', async (t) => {
  const sandbox = startSandbox({ PAYMENT_SANDBOX_PORT: '0', PAYMENT_SANDBOX_SLOW_MS: '30000', LOG_LEVEL: 'info' });
  t.teardown(() => {
    if (sandbox.child.exitCode === null) sandbox.child.kill('SIGKILL');
  });
  const deadline = Date.now() + 20_000;
  let port: number | undefined;
  while (port === undefined && Date.now() < deadline && sandbox.child.exitCode === null) {
    const line = sandbox.lines.find((l) => l.includes('payment sandbox listening on'));
    port = line ? (JSON.parse(line) as { port: number }).port : undefined;
    if (port === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (port === undefined) return t.fail(`no listening line:\n${sandbox.lines.join('\n')}`);

  // A charge whose answer the slow mode holds for 30 s: shutdown must not wait for it.
  const held = fetch(`http://127.0.0.1:${port}/charges`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': 'e2e:charge' },
    body: JSON.stringify({ orderId: 'e2e', amountCents: 100, currency: 'EUR' }),
  }).catch(() => undefined);
  const deadlineCharge = Date.now() + 10_000;
  let charges = 0;
  while (charges === 0 && Date.now() < deadlineCharge) {
    charges = ((await (await fetch(`http://127.0.0.1:${port}/_stats`)).json()) as { charges: number }).charges;
    if (charges === 0) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const started = Date.now();
  sandbox.child.kill('SIGTERM');
  const [code, signal] = await sandbox.exited;
  await held;

  t.is(charges, 1);
  t.is(code, 0);
  t.is(signal, null);
  t.true(Date.now() - started < 5000, 'stopped without waiting for the held answer');
  t.true(sandbox.lines.some((l) => l.includes('payment sandbox stopped')));
});

test('when a sandbox setting in the environment is bad, then it exits 78 naming it', async (t) => {
  const sandbox = startSandbox({ PAYMENT_SANDBOX_PORT: '0', PAYMENT_SANDBOX_OUTAGE: 'sometimes' });

  const [code] = await sandbox.exited;

  t.is(code, 78);
  t.true(sandbox.lines.some((l) => l.includes('outage')));
});
