import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { freePort } from '../../scripts/lib/embedded-services.js';
import { call } from '../helpers/api-http.js';
import {
  apiKeysEnv,
  makeDeadOrders,
  seedOrder,
  startDeadLetterSystem,
  waitForOrders,
  type DeadLetterSystem,
} from '../helpers/dead-letters.js';
import { stopTestServices } from '../helpers/services.js';

/** The compiled script, as `npm run dlq` runs it. */
const SCRIPT = fileURLToPath(new URL('../../scripts/dlq.js', import.meta.url));

interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node dist/scripts/dlq.js ...args` with `env` added to a clean environment. */
function dlq(env: Record<string, string>, ...args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SCRIPT, ...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const systems: DeadLetterSystem[] = [];

async function system(label: string, env: Record<string, string> = {}): Promise<DeadLetterSystem> {
  const s = await startDeadLetterSystem(label, env);
  systems.push(s);
  return s;
}

test.after.always(async () => {
  await Promise.all(systems.map((s) => s.close()));
  await stopTestServices();
});

const show = (run: CliRun) => `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;

test.serial(
  'when dead orders exist, then list prints them as a table, newest failure first, reasons cut short',
  async (t) => {
    const s = await system('cli_list');
    const dead = await makeDeadOrders(s, 3);
    const noisy = await seedOrder(s, 'FAILED', {
      failedAt: new Date(Date.now() - 60_000),
      lastError: `carrier said: \u001b[31m${'no '.repeat(60)}\u001b[0m`,
    });
    const env = { API_URL: s.api.baseUrl };

    const run = await dlq(env, 'list');

    t.is(run.code, 0, show(run));
    const lines = run.stdout.split('\n');
    t.regex(lines[0], /^ORDER ID\s+FAILED AT\s+ATTEMPTS\s+FAILED REASON$/);
    const rows = lines.slice(1).filter((l) => l.startsWith('ord_'));
    t.deepEqual(rows.map((r) => r.split(/\s+/)[0]).sort(), [...dead, noisy].sort());
    t.is(rows.at(-1)?.split(/\s+/)[0], noisy, 'the oldest failure comes last');
    for (const id of dead) {
      const row = rows.find((r) => r.startsWith(id)) ?? '';
      t.regex(
        row,
        new RegExp(`^${id}\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\s+2\\s+simulated failure of ${id}`),
      );
    }
    const noisyRow = rows.at(-1) ?? '';
    t.true(noisyRow.endsWith('…'), noisyRow);
    t.false(/[\x00-\x08\x0b-\x1f]/.test(run.stdout), 'no control characters reach the terminal');
    t.true(Math.max(...rows.map((r) => r.length)) < 140, 'rows fit a wide terminal');
    t.regex(run.stdout, /4 dead orders\./);
    t.regex(run.stdout, /npm run dlq -- reprocess --all/);
    t.is(run.stderr, '');
    t.is((await s.order(dead[0])).status, 'FAILED', 'listing changes nothing');

    const limited = await dlq(env, 'list', '--limit', '2');
    t.is(limited.code, 0, show(limited));
    t.is(limited.stdout.split('\n').filter((l) => l.startsWith('ord_')).length, 2);
    t.regex(limited.stdout, /more are dead: npm run dlq -- list --limit \d+/);

    const bad = await dlq(env, 'list', '--limit', '0');
    t.is(bad.code, 1, show(bad));
    t.regex(bad.stderr, /--limit takes a whole number/);
    t.regex(bad.stderr, /usage: npm run dlq/);
  },
);

test.serial(
  'when one order is reprocessed from the shell, then it is PENDING with the reason in its history; unknown and live orders fail with a hint',
  async (t) => {
    const s = await system('cli_one');
    const [id] = await makeDeadOrders(s, 1);
    const processed = await seedOrder(s, 'PROCESSED');
    const env = { API_URL: s.api.baseUrl };

    const run = await dlq(env, 'reprocess', id, '--reason', 'address corrected');

    t.is(run.code, 0, show(run));
    t.regex(run.stdout, new RegExp(`${id} is PENDING`));
    t.regex(run.stdout, /history: reprocess requested by public: address corrected/);
    const order = await s.order(id);
    t.is(order.status, 'PENDING');
    t.is(order.history.at(-1)?.reason, 'reprocess requested by public: address corrected');
    t.is((await s.api.container.queue.getJob(id))?.attemptsMade, 0);

    const again = await dlq(env, 'reprocess', id);
    t.is(again.code, 0, `a repeated call is fine: ${show(again)}`);

    const live = await dlq(env, 'reprocess', processed);
    t.is(live.code, 1, show(live));
    t.regex(live.stderr, /409 INVALID_STATE/);
    t.regex(live.stderr, /only FAILED orders can be reprocessed/);

    const unknown = await dlq(env, 'reprocess', 'ord_00000000000000000000000000000000');
    t.is(unknown.code, 1, show(unknown));
    t.regex(unknown.stderr, /404 NOT_FOUND/);
    t.regex(unknown.stderr, /npm run dlq -- list/);

    const tooLong = await dlq(env, 'reprocess', id, '--reason', 'x'.repeat(300));
    t.is(tooLong.code, 1, show(tooLong));
    t.regex(tooLong.stderr, /400 VALIDATION_ERROR.*reason/);

    for (const args of [['reprocess'], ['reprocess', id, '--all'], ['frobnicate'], [], ['list', '--bogus']]) {
      const usage = await dlq(env, ...args);
      t.is(usage.code, 1, `${args.join(' ')}: ${show(usage)}`);
      t.regex(usage.stderr, /usage: npm run dlq/);
    }
    const help = await dlq(env, '--help');
    t.is(help.code, 0);
    t.regex(help.stdout, /reprocess --all/);
  },
);

test.serial(
  'when every dead order is reprocessed from the shell, then it works in batches with a progress bar, prints the counts, and all end PROCESSED',
  async (t) => {
    const s = await system('cli_all');
    const real = await makeDeadOrders(s, 3);
    const seeded = await Promise.all(Array.from({ length: 120 }, () => seedOrder(s, 'FAILED')));
    const all = [...real, ...seeded];
    const env = { API_URL: s.api.baseUrl };

    const run = await dlq(env, 'reprocess', '--all', '--reason', 'carrier back', '--batch', '50');

    t.is(run.code, 0, show(run));
    t.regex(run.stdout, /^reprocessed 123, skipped 0, not found 0$/m);
    t.regex(run.stderr, /123 dead orders found; reprocessing 50 per request/);
    t.regex(run.stderr, /reprocess \|[█░]+\| 100% 123\/123 orders/, 'the bar reaches the end');
    t.is(await s.api.container.models.Order.countDocuments({ status: 'FAILED' }), 0);
    for (const id of real) {
      t.is((await s.order(id)).history.at(-1)?.reason, 'reprocess requested by public: carrier back');
      t.is((await s.api.container.queue.getJob(id))?.attemptsMade, 0);
    }
    // Bounded batches: 123 orders at 50 per request are three bulk calls.
    const metrics = await call(s.api, 'GET', '/metrics');
    t.regex(metrics.text, /orders_reprocess_actions_total\{[^}]*scope="bulk"[^}]*\} 3\b/);

    const nothing = await dlq(env, 'reprocess', '--all');
    t.is(nothing.code, 0, show(nothing));
    t.regex(nothing.stdout, /No dead orders; nothing to reprocess\./);
    const empty = await dlq(env, 'list');
    t.is(empty.code, 0);
    t.regex(empty.stdout, /No dead orders\./);

    await s.startWorker({ FAILURE_RATE: '0' });
    await waitForOrders(s, all, 'PROCESSED', (o) => o.status === 'PROCESSED', 60_000);
    for (const id of real) t.is(await s.effects(id), 1);
  },
);

test.serial(
  'when the api is not reachable or refuses the key, then the script says what to do and exits 1',
  async (t) => {
    const nowhere = await dlq({ API_URL: `http://127.0.0.1:${await freePort()}` }, 'list');
    t.is(nowhere.code, 1, show(nowhere));
    t.regex(nowhere.stderr, /cannot reach the api at http:\/\/127\.0\.0\.1:\d+/);
    t.regex(nowhere.stderr, /start it with npm start or set API_URL/);

    const notUrl = await dlq({ API_URL: 'somewhere' }, 'list');
    t.is(notUrl.code, 1, show(notUrl));
    t.regex(notUrl.stderr, /API_URL/);

    const keys = apiKeysEnv();
    const s = await system('cli_auth', { API_KEYS: keys.API_KEYS });
    const dead = await seedOrder(s, 'FAILED');
    const env = { API_URL: s.api.baseUrl };
    for (const [who, extra] of [
      ['no key', {}],
      ['a non-admin key', { API_KEY: keys.shopKey }],
    ] as const) {
      for (const args of [['list'], ['reprocess', dead], ['reprocess', '--all']]) {
        const run = await dlq({ ...env, ...extra }, ...args);
        t.is(run.code, 1, `${args.join(' ')} with ${who}: ${show(run)}`);
        t.regex(run.stderr, /401 UNAUTHORIZED/);
        t.regex(run.stderr, /set API_KEY to an admin key/);
      }
    }
    t.is((await s.order(dead)).status, 'FAILED');

    const admin = { ...env, API_KEY: keys.opsKey };
    const listed = await dlq(admin, 'list');
    t.is(listed.code, 0, show(listed));
    t.true(listed.stdout.includes(dead));
    const done = await dlq(admin, 'reprocess', '--all', '--reason', 'ops on call');
    t.is(done.code, 0, show(done));
    t.regex(done.stdout, /reprocessed 1, skipped 0, not found 0/);
    t.is((await s.order(dead)).history.at(-1)?.reason, 'reprocess requested by ops: ops on call');
  },
);

test.serial(
  'when the shell replays with filters, then --dry-run only counts and samples, and a replay walks the matches in batches under the operator',
  async (t) => {
    const s = await system('cli_filter');
    const seed = (customerId: string, lastError: string) =>
      seedOrder(s, 'FAILED', { customerId, lastError, failedAt: new Date('2026-11-20T03:00:00Z') });
    const timeouts = [
      await seed('c-a', 'charge ETIMEDOUT'),
      await seed('c-a', 'charge ETIMEDOUT'),
      await seed('c-b', 'charge ETIMEDOUT'),
    ];
    const other = await seed('c-a', 'refused: ECONNREFUSED');
    const env = { API_URL: s.api.baseUrl, DLQ_OPERATOR: 'carol' };

    const dry = await dlq(env, 'reprocess', '--failed-reason', 'etimedout', '--dry-run');
    t.is(dry.code, 0, show(dry));
    t.regex(dry.stdout, /dry run: 3 dead orders match; nothing was changed/);
    for (const id of timeouts) t.true(dry.stdout.includes(id), `${id} is in the sample: ${show(dry)}`);
    t.false(dry.stdout.includes(other));
    for (const id of [...timeouts, other]) t.is((await s.order(id)).status, 'FAILED');

    const none = await dlq(env, 'reprocess', '--customer', 'c-zzz', '--failed-to', '2026-11-21T00:00:00Z');
    t.is(none.code, 0, show(none));
    t.regex(none.stdout, /No dead orders match/);

    const run = await dlq(
      env,
      'reprocess',
      '--failed-reason',
      'ETIMEDOUT',
      '--batch',
      '1',
      '--reason',
      'provider back',
    );
    t.is(run.code, 0, show(run));
    t.regex(run.stderr, /3 dead orders match; reprocessing 1 per request/);
    t.regex(run.stderr, /reprocess \|.*\| 100% 3\/3 orders/);
    t.regex(run.stdout, /reprocessed 3, skipped 0, not found 0/);
    for (const id of timeouts) {
      const entry = (await s.order(id)).history.at(-1);
      t.is(entry?.by, 'carol');
      t.is(entry?.reason, 'reprocess requested by carol: provider back');
    }
    t.is((await s.order(other)).status, 'FAILED', 'the other failure stays dead');

    const named = await dlq(env, 'reprocess', '--customer', 'c-a', '--operator', 'dave');
    t.is(named.code, 0, show(named));
    t.is((await s.order(other)).history.at(-1)?.by, 'dave');

    for (const args of [
      ['reprocess', '--failed-from', 'last tuesday'],
      ['list', '--customer', 'c-a'],
      ['reprocess', other, '--customer', 'c-a'],
      ['reprocess', '--dry-run', '--batch', '0'],
    ]) {
      const usage = await dlq(env, ...args);
      t.is(usage.code, 1, `${args.join(' ')}: ${show(usage)}`);
      t.regex(usage.stderr, /usage: npm run dlq/);
    }
    const badOperator = await dlq(env, 'reprocess', '--customer', 'c-a', '--operator', 'not a name');
    t.is(badOperator.code, 1, show(badOperator));
    t.regex(badOperator.stderr, /400 VALIDATION_ERROR.*operator/);
  },
);
