import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { ConfigError, loadConfig } from '#common';
import { REPO_ROOT } from '../../scripts/lib/process-runner.js';

const run = promisify(execFile);

test('when LOG_PRETTY is unset, then logs are JSON; 1/true turn pretty output on, 0/false off', (t) => {
  t.false(loadConfig({}).logPretty);
  for (const value of ['1', 'true', 'TRUE']) t.true(loadConfig({ LOG_PRETTY: value }).logPretty, value);
  for (const value of ['0', 'false', '']) t.false(loadConfig({ LOG_PRETTY: value }).logPretty, value);
});

test('when LOG_PRETTY is not a boolean, then the configuration names it', (t) => {
  const error = t.throws(() => loadConfig({ LOG_PRETTY: 'yes please' }), { instanceOf: ConfigError });
  t.deepEqual(
    error?.problems.map((p) => p.split(' ')[0]),
    ['LOG_PRETTY'],
  );
});

/** Runs a tiny script that logs one line through createLogger, and returns what it wrote to stdout. */
async function logOnce(pretty: boolean): Promise<string> {
  const script = `
    const { createLogger } = await import('#common');
    const logger = createLogger({ service: 'test', level: 'info', pretty: ${pretty} });
    logger.info({ orderId: 'ord_1' }, 'hello there');
    logger.flush();`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    timeout: 20_000,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  return stdout;
}

test('when pretty is asked for, then pino-pretty writes a human-readable line; otherwise one JSON object per line', async (t) => {
  const [coloured, json] = await Promise.all([logOnce(true), logOnce(false)]);
  const pretty = coloured.replace(/\x1b\[[0-9;]*m/g, '');

  const line = JSON.parse(json.trim()) as Record<string, unknown>;
  t.like(line, { level: 'info', service: 'test', msg: 'hello there', orderId: 'ord_1' });
  t.is(typeof line.pid, 'number');

  t.false(pretty.trimStart().startsWith('{'), `not JSON: ${pretty}`);
  t.regex(pretty, /INFO.*hello there/);
  t.regex(pretty, /orderId: "ord_1"/);
});
