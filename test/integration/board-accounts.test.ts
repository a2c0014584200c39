import test from 'ava';
import { ConfigError, hashBoardPassword, loadConfig } from '#common';
import { call } from '../helpers/api-http.js';
import { BOARD, actionEndpoints, snapshot } from '../helpers/board.js';
import {
  makeDeadOrders,
  postOrders,
  startDeadLetterSystem,
  waitFor,
  waitForOrders,
  type DeadLetterSystem,
} from '../helpers/dead-letters.js';
import { stopTestServices } from '../helpers/services.js';

interface AuditItem {
  readonly id: string;
  readonly at: string;
  readonly actor: string;
  readonly role: string;
  readonly source: string;
  readonly action: string;
  readonly queue?: string;
  readonly jobId?: string;
  readonly path?: string;
  readonly outcome: string;
  readonly status?: number;
}
interface AuditPage {
  readonly items: AuditItem[];
  readonly nextCursor: string | null;
}

const OPERATOR = { name: 'olga', password: 'olga-operator-password' };
const VIEWER = { name: 'vic', password: 'vic-viewer-password-1' };
const SHARED = { name: 'ops', password: 'correct-horse-battery-staple' };
// API authentication is off here (every caller is the public client, an admin): the admin key's
// rules for /admin/* are tested with the pause routes (processing-control.test.ts).
const admin = {};
const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`,
});

let usersEnv: string | undefined;
async function accountsEnv(): Promise<Record<string, string>> {
  usersEnv ??= [
    `${OPERATOR.name}:operator:${await hashBoardPassword(OPERATOR.password)}`,
    `${VIEWER.name}:viewer:${await hashBoardPassword(VIEWER.password)}`,
  ].join(',');
  return {
    BULL_BOARD_USERS: usersEnv,
    BULL_BOARD_USER: SHARED.name,
    BULL_BOARD_PASSWORD: SHARED.password,
    AUTH_FAILURE_LIMIT: '0',
  };
}

const systems: DeadLetterSystem[] = [];
async function system(label: string): Promise<DeadLetterSystem> {
  const s = await startDeadLetterSystem(label, await accountsEnv());
  systems.push(s);
  return s;
}

test.after.always(async () => {
  await Promise.all(systems.map((s) => s.close()));
  await stopTestServices();
});

async function auditOf(s: DeadLetterSystem, query = ''): Promise<AuditItem[]> {
  const items: AuditItem[] = [];
  let cursor: string | null = null;
  do {
    const res: { status: number; text: string; body: AuditPage } = await call<AuditPage>(
      s.api,
      'GET',
      `/admin/audit?limit=100${query}${cursor ? `&cursor=${cursor}` : ''}`,
      { headers: admin },
    );
    if (res.status !== 200) throw new Error(`GET /admin/audit: ${res.status} ${res.text}`);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
  } while (cursor);
  return items;
}

test('when BULL_BOARD_USERS is malformed, then loadConfig names the entry, never its text', (t) => {
  const hash = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  for (const [raw, expected] of [
    ['alice:admin:' + hash, /entry 1 must be name:operator\|viewer/],
    [`alice:viewer:${hash},bob:operator:plaintext-password`, /entry 2 must be/],
    [`alice:viewer:${hash.replace('16384', '1000')}`, /entry 1 must be/],
    [`alice:viewer:${hash},alice:operator:${hash}`, /names alice twice/],
    [`ops:viewer:${hash}`, /names the shared BULL_BOARD_USER/],
  ] as const) {
    const err = t.throws(
      () => loadConfig({ BULL_BOARD_USERS: raw, BULL_BOARD_USER: 'ops', BULL_BOARD_PASSWORD: SHARED.password }),
      { instanceOf: ConfigError },
      raw,
    );
    t.regex(err?.message ?? '', expected);
    t.false(err?.message.includes('plaintext-password'), 'the value is not echoed');
  }
  const config = loadConfig({ BULL_BOARD_USERS: `alice:viewer:${hash}` });
  t.deepEqual(config.boardAccounts, [{ name: 'alice', role: 'viewer', passwordHash: hash }]);
  t.is(config.auditRetentionDays, 90);
});

test.serial(
  'when a viewer calls any state-changing board action, then it is a 403, nothing changes and each refusal is audited',
  async (t) => {
    const s = await system('board_viewer');
    const [dead] = await makeDeadOrders(s, 2);
    const queue = s.api.container.queue;
    const before = await snapshot(queue);
    const viewer = basic(VIEWER.name, VIEWER.password);

    // A viewer sees the board, read-only.
    const page = await call(s.api, 'GET', BOARD, { headers: viewer });
    t.is(page.status, 200);
    const queues = await call<{ queues: { name: string; readOnlyMode: boolean }[] }>(
      s.api,
      'GET',
      `${BOARD}/api/queues`,
      { headers: viewer },
    );
    t.is(queues.status, 200, queues.text);
    t.true(queues.body.queues.length === 2 && queues.body.queues.every((q) => q.readOnlyMode));
    const logs = await call(s.api, 'GET', `${BOARD}/api/queues/orders/${dead}/logs`, { headers: viewer });
    t.is(logs.status, 200, logs.text);

    const endpoints = actionEndpoints(dead);
    for (const endpoint of endpoints) {
      const res = await call(s.api, endpoint.method, endpoint.path, { json: endpoint.json, headers: viewer });
      const where = `${endpoint.method} ${endpoint.path}`;
      t.is(res.status, 403, `${where} (${res.text.slice(0, 200)})`);
      t.is((res.body as { error?: { code?: string } }).error?.code, 'FORBIDDEN', where);
    }
    t.deepEqual(await snapshot(queue), before, 'nothing changed');
    t.is((await s.order(dead)).status, 'FAILED');

    const refusals = await auditOf(s, `&actor=${VIEWER.name}`);
    t.is(refusals.length, endpoints.length, 'one record per refused call');
    for (const endpoint of endpoints) {
      const record = refusals.find((r) => r.path === `${endpoint.method} ${endpoint.path}`);
      t.like(
        record,
        { actor: VIEWER.name, role: 'viewer', source: 'board', outcome: 'refused', status: 403 },
        endpoint.path,
      );
    }
    t.like(
      refusals.find((r) => r.path === `PUT ${BOARD}/api/queues/orders/${dead}/retry`),
      { action: 'board.retry', queue: 'orders', jobId: dead },
    );
    // The wrong password of a named account is a 401, as for the shared login.
    t.is((await call(s.api, 'GET', BOARD, { headers: basic(VIEWER.name, OPERATOR.password) })).status, 401);
    t.is((await call(s.api, 'GET', BOARD, { headers: basic('nobody', VIEWER.password) })).status, 401);
  },
);

test.serial(
  'when an operator acts on the board, then each action is done and audited with who, which queue and job; the shared login still works',
  async (t) => {
    const s = await system('board_operator');
    const [one, two, three] = await makeDeadOrders(s, 3);
    const queue = s.api.container.queue;
    const operator = basic(OPERATOR.name, OPERATOR.password);
    const put = (path: string, headers = operator) =>
      call(s.api, 'PUT', `${BOARD}/api/queues/orders${path}`, { headers });

    t.is((await put(`/${one}/retry`)).status, 204);
    t.is((await put(`/${two}/clean`)).status, 204);
    t.is((await put('/pause')).status, 200);
    t.true(await queue.isPaused());
    t.is((await put('/resume')).status, 200);
    t.is((await put('/retry/failed', basic(SHARED.name, SHARED.password))).status, 200);
    t.is(await queue.getJobState(three), 'waiting');
    t.is(await queue.getJob(two), undefined);
    // A board call that fails is audited as failed.
    const notThere = await put('/ord_00000000000000000000000000000000/promote');
    t.is(notThere.status, 404);

    const records = await auditOf(s);
    const mine = records.filter((r) => r.actor === OPERATOR.name);
    t.deepEqual(mine.map((r) => [r.action, r.queue ?? null, r.jobId ?? null, r.outcome]).reverse(), [
      ['board.retry', 'orders', one, 'done'],
      ['board.remove', 'orders', two, 'done'],
      ['board.pause', 'orders', null, 'done'],
      ['board.resume', 'orders', null, 'done'],
      ['board.promote', 'orders', 'ord_00000000000000000000000000000000', 'failed'],
    ]);
    t.true(mine.every((r) => r.role === 'operator' && r.source === 'board' && !Number.isNaN(Date.parse(r.at))));
    t.like(
      records.find((r) => r.actor === SHARED.name),
      { action: 'board.retry-all', queue: 'orders', role: 'operator', outcome: 'done', status: 200 },
    );
    // Reads are not audited; the filters and the cursor work.
    t.false(records.some((r) => r.path?.startsWith('GET ')));
    const onlyPauses = await auditOf(s, '&action=board.pause');
    t.deepEqual(
      onlyPauses.map((r) => r.actor),
      [OPERATOR.name],
    );
    const first = await call<AuditPage>(s.api, 'GET', '/admin/audit?limit=2', { headers: admin });
    t.is(first.body.items.length, 2);
    t.truthy(first.body.nextCursor);
    const bad = await call(s.api, 'GET', '/admin/audit?cursor=nope', { headers: admin });
    t.is(bad.status, 400);
  },
);

test.serial(
  "when an operator retries a dead order's job from the board, then the order's history names the operator",
  async (t) => {
    const s = await system('board_retry_by');
    const [id, other] = await makeDeadOrders(s, 2);
    await s.startWorker({ FAILURE_RATE: '0' });

    const res = await call(s.api, 'PUT', `${BOARD}/api/queues/orders/${id}/retry`, {
      headers: basic(OPERATOR.name, OPERATOR.password),
    });
    t.is(res.status, 204, res.text);
    const retryAll = await call(s.api, 'PUT', `${BOARD}/api/queues/orders/retry/failed`, {
      headers: basic(SHARED.name, SHARED.password),
    });
    t.is(retryAll.status, 200, retryAll.text);

    const [done, otherDone] = await waitForOrders(s, [id, other], 'PROCESSED', (o) => o.status === 'PROCESSED');
    const revived = done.history.find((h) => h.status === 'PROCESSING' && h.by !== undefined);
    t.like(revived, { by: OPERATOR.name, reason: 'dead job retried from the dashboard; attempts start again' });
    t.is(otherDone.history.find((h) => h.by !== undefined)?.by, SHARED.name, 'a retry-all names its operator too');
    const view = await call<{ history: { by?: string }[] }>(s.api, 'GET', `/orders/${id}`, { headers: admin });
    t.true(
      view.body.history.some((h) => h.by === OPERATOR.name),
      'the order view shows it',
    );
  },
);

test.serial(
  'when a job has run, then the board shows (even to a viewer) the saga step it reached as its progress, and its failed steps in its log',
  async (t) => {
    const s = await system('board_progress');
    const [dead] = await makeDeadOrders(s, 1);
    await s.startWorker({ FAILURE_RATE: '0' });
    const [processed] = await postOrders(s, 1);
    await waitForOrders(s, [processed], 'PROCESSED', (o) => o.status === 'PROCESSED');
    const viewer = basic(VIEWER.name, VIEWER.password);
    const jobOf = (id: string) =>
      call<{ job: { progress: unknown }; status: string }>(s.api, 'GET', `${BOARD}/api/queues/orders/${id}`, {
        headers: viewer,
      });

    // The progress is written best effort beside the step, so it may land a moment after the order.
    await waitFor('the processed job to show its last step', async () => {
      const res = await jobOf(processed);
      return JSON.stringify(res.body.job?.progress) === JSON.stringify({ step: 'confirm', outcome: 'done' })
        ? true
        : undefined;
    });
    const deadJob = await jobOf(dead);
    t.is(deadJob.status, 200, deadJob.text);
    t.is(deadJob.body.status, 'failed');
    t.like(deadJob.body.job.progress, { step: 'charge' }, JSON.stringify(deadJob.body.job.progress));
    const logs = await call<{ logs: string[]; count: number }>(
      s.api,
      'GET',
      `${BOARD}/api/queues/orders/${dead}/logs`,
      {
        headers: viewer,
      },
    );
    t.is(logs.status, 200, logs.text);
    const lines = Array.isArray(logs.body) ? (logs.body as string[]) : logs.body.logs;
    t.true(
      lines.some((l) => /^charge failed in \d+ ms$/.test(l)),
      `the job's log names the failed step: ${JSON.stringify(lines)}`,
    );
  },
);
