import test, { type ExecutionContext } from 'ava';
import { ConfigError, PROCESS_ORDER_JOB, loadConfig } from '#common';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { call, type HttpResult } from '../helpers/api-http.js';
import {
  makeDeadOrders,
  postOrders,
  startDeadLetterSystem,
  waitForJobState,
  waitForOrders,
  type DeadLetterSystem,
} from '../helpers/dead-letters.js';
import { BOARD, actionEndpoints, apiEndpoints, snapshot, type Endpoint } from '../helpers/board.js';
import { stopTestServices } from '../helpers/services.js';
import { transitionsOf } from '../helpers/orders.js';

const USER = 'ops';
const PASSWORD = 'correct-horse-battery-staple';
// Wrong credentials are sent on purpose, many times: the guessing limit has its own tests (test/security).
const BOARD_ENV = { BULL_BOARD_USER: USER, BULL_BOARD_PASSWORD: PASSWORD, AUTH_FAILURE_LIMIT: '0' };
const DASHBOARD_RETRY_REASON = 'dead job retried from the dashboard; attempts start again';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
const RIGHT = { authorization: basic(USER, PASSWORD) };

const systems: DeadLetterSystem[] = [];
const apis: TestApi[] = [];

async function system(label: string, env: Record<string, string> = {}): Promise<DeadLetterSystem> {
  const s = await startDeadLetterSystem(label, { ...BOARD_ENV, ...env });
  systems.push(s);
  return s;
}

test.after.always(async () => {
  await Promise.all([...systems.map((s) => s.close()), ...apis.map((a) => a.close())]);
  await stopTestServices();
});

function assertUnauthorized(t: ExecutionContext, res: HttpResult<unknown>, label: string): void {
  t.is(res.status, 401, `${label}: status (${res.text.slice(0, 200)})`);
  t.regex(res.headers.get('www-authenticate') ?? '', /^Basic realm="[^"]+"/, `${label}: WWW-Authenticate`);
  t.is((res.body as { error?: { code?: string } }).error?.code, 'UNAUTHORIZED', `${label}: code`);
}

/** The page, a static asset of the page, and the board's own JSON API. */
async function pageAndAsset(s: DeadLetterSystem): Promise<{ page: string; asset: string }> {
  const page = await call(s.api, 'GET', BOARD, { headers: RIGHT });
  const script = /src="(static\/js\/[^"]+\.js)"/.exec(page.text)?.[1];
  if (!script) throw new Error(`no script in the board's page: ${page.text.slice(0, 500)}`);
  return { page: BOARD, asset: `${BOARD}/${script}` };
}

test('when no board credentials are configured, then the board is not there (404)', async (t) => {
  const api = await startTestApi('board_off');
  apis.push(api);

  for (const [method, path] of [
    ['GET', BOARD],
    ['GET', `${BOARD}/`],
    ['GET', `${BOARD}/api/queues`],
    ['PUT', `${BOARD}/api/queues/orders/retry/failed`],
  ] as const) {
    const res = await call(api, method, path, { headers: RIGHT });
    t.is(res.status, 404, `${method} ${path}`);
    t.is((res.body as { error?: { code?: string } }).error?.code, 'NOT_FOUND');
  }
});

test('when the board password is shorter than 12 characters, then loadConfig throws a ConfigError naming it', (t) => {
  for (const env of [
    { BULL_BOARD_USER: 'ops', BULL_BOARD_PASSWORD: 'short-pass' },
    { BULL_BOARD_USER: 'ops', BULL_BOARD_PASSWORD: '12345678901' },
    { BULL_BOARD_USER: 'ops' },
  ]) {
    const err = t.throws(() => loadConfig(env), { instanceOf: ConfigError }, JSON.stringify(Object.keys(env)));
    t.true(
      (err as ConfigError).problems.some((p) => p.includes('BULL_BOARD_PASSWORD')),
      (err as ConfigError).message,
    );
    if (env.BULL_BOARD_PASSWORD) t.false(err?.message.includes(env.BULL_BOARD_PASSWORD), 'the value is not echoed');
  }
  t.notThrows(() => loadConfig({ BULL_BOARD_USER: 'ops', BULL_BOARD_PASSWORD: '123456789012' }));
});

test.serial(
  'when a request to the board has no or wrong credentials, then the page, its assets and every API endpoint answer 401 and nothing changes',
  async (t) => {
    const s = await system('board_401');
    const [dead] = await makeDeadOrders(s, 2);
    const queue = s.api.container.queue;
    const { page, asset } = await pageAndAsset(s);
    const before = await snapshot(queue);
    const endpoints: Endpoint[] = [
      { method: 'GET', path: page },
      { method: 'GET', path: `${BOARD}/` },
      { method: 'GET', path: `${BOARD}/queue/orders?status=failed` },
      { method: 'GET', path: asset },
      ...apiEndpoints(dead),
      { method: 'DELETE', path: `${BOARD}/api/queues/orders/clean/failed` },
    ];
    t.true(endpoints.length > 30, `${endpoints.length} endpoints`);
    const wrong: [string, Record<string, string>][] = [
      ['no credentials', {}],
      ['wrong password', { authorization: basic(USER, `${PASSWORD}x`) }],
      ['wrong user', { authorization: basic('admin', PASSWORD) }],
      ['empty credentials', { authorization: basic('', '') }],
      ['no colon', { authorization: `Basic ${Buffer.from(USER + PASSWORD).toString('base64')}` }],
      ['not base64', { authorization: 'Basic !!!' }],
      ['a bearer token', { authorization: `Bearer ${PASSWORD}` }],
    ];

    for (const endpoint of endpoints) {
      for (const [label, headers] of wrong) {
        const res = await call(s.api, endpoint.method, endpoint.path, { json: endpoint.json, headers });
        assertUnauthorized(t, res, `${endpoint.method} ${endpoint.path} with ${label}`);
        t.false(res.text.includes('"queues"'), 'no board data leaks');
      }
    }

    t.deepEqual(await snapshot(queue), before, 'nothing changed');
    t.is((await s.order(dead)).status, 'FAILED');

    // The right credentials open the same doors.
    for (const path of [page, `${BOARD}/queue/orders?status=failed`, asset, `${BOARD}/api/queues`]) {
      const res = await call(s.api, 'GET', path, { headers: RIGHT });
      t.is(res.status, 200, `GET ${path}`);
    }
    t.regex((await call(s.api, 'GET', asset, { headers: RIGHT })).headers.get('content-type') ?? '', /javascript/);
  },
);

test.serial(
  'when a state-changing board call comes from another site, then it answers 403 even with the right credentials and nothing changes',
  async (t) => {
    const s = await system('board_403');
    const [dead] = await makeDeadOrders(s, 2);
    const queue = s.api.container.queue;
    await queue.add(
      PROCESS_ORDER_JOB,
      { orderId: 'ord_delayed', correlationId: 'c' },
      { jobId: 'later', delay: 600_000 },
    );
    const before = await snapshot(queue);
    const crossSite: [string, Record<string, string>][] = [
      ['Origin: http://evil.example', { origin: 'http://evil.example' }],
      ['Origin: null', { origin: 'null' }],
      ['Origin: another port', { origin: s.api.baseUrl.replace(/:\d+$/, ':1') }],
      ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
      ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
      ['Sec-Fetch-Site: cross-site with a same Origin', { 'sec-fetch-site': 'cross-site', origin: s.api.baseUrl }],
    ];

    for (const endpoint of actionEndpoints(dead)) {
      for (const [label, headers] of crossSite) {
        const res = await call(s.api, endpoint.method, endpoint.path, {
          json: endpoint.json,
          headers: { ...RIGHT, ...headers },
        });
        const where = `${endpoint.method} ${endpoint.path} with ${label}`;
        t.is(res.status, 403, `${where} (${res.text.slice(0, 200)})`);
        t.is((res.body as { error?: { code?: string } }).error?.code, 'FORBIDDEN', where);
      }
    }
    t.deepEqual(await snapshot(queue), before, 'nothing changed');
    t.is((await s.order(dead)).status, 'FAILED');

    // Reading stays possible from a link (no state change), and the board's own calls pass.
    const read = await call(s.api, 'GET', `${BOARD}/api/queues`, {
      headers: { ...RIGHT, 'sec-fetch-site': 'cross-site' },
    });
    t.is(read.status, 200);
    // The webhook events' queue is on the board too: its failed set holds the undeliverable events.
    const names = ((read.body as { queues?: { name: string }[] }).queues ?? []).map((q) => q.name).sort();
    t.deepEqual(names, ['notifications', 'orders']);
    const sameOrigin = await call(s.api, 'PUT', `${BOARD}/api/queues/orders/pause`, {
      headers: { ...RIGHT, 'sec-fetch-site': 'same-origin', origin: s.api.baseUrl },
    });
    t.is(sameOrigin.status, 200, sameOrigin.text);
    t.true(await queue.isPaused());
    const sameOriginByOrigin = await call(s.api, 'PUT', `${BOARD}/api/queues/orders/resume`, {
      headers: { ...RIGHT, origin: s.api.baseUrl },
    });
    t.is(sameOriginByOrigin.status, 200, sameOriginByOrigin.text);
    t.false(await queue.isPaused());
  },
);

test.serial(
  'when the board is called with the right credentials, then retry, retry all, remove, clean, promote, pause and resume work',
  async (t) => {
    const s = await system('board_actions');
    const [one, two, three] = await makeDeadOrders(s, 3);
    const queue = s.api.container.queue;
    const put = (path: string) => call(s.api, 'PUT', `${BOARD}/api/queues/orders${path}`, { headers: RIGHT });

    // Retry one dead job.
    const retryOne = await put(`/${one}/retry`);
    t.is(retryOne.status, 204, retryOne.text);
    t.is(await queue.getJobState(one), 'waiting');
    t.is(await queue.getJobState(two), 'failed');

    // Remove one job ("clean" of one job).
    const remove = await put(`/${two}/clean`);
    t.is(remove.status, 204, remove.text);
    t.is(await queue.getJob(two), undefined);

    // Retry every failed job.
    const retryAll = await put('/retry/failed');
    t.is(retryAll.status, 200, retryAll.text);
    t.deepEqual(retryAll.body, { retried: 1, skipped: 0 });
    t.is(await queue.getJobState(three), 'waiting');
    t.is((await queue.getJobCounts('failed')).failed, 0);

    // Promote one delayed job, then all of them.
    const later = { correlationId: 'c' };
    await queue.add(PROCESS_ORDER_JOB, { orderId: 'ord_a', ...later }, { jobId: 'later-a', delay: 600_000 });
    await queue.add(PROCESS_ORDER_JOB, { orderId: 'ord_b', ...later }, { jobId: 'later-b', delay: 600_000 });
    const promoteOne = await put('/later-a/promote');
    t.is(promoteOne.status, 204, promoteOne.text);
    t.is(await queue.getJobState('later-a'), 'waiting');
    t.is(await queue.getJobState('later-b'), 'delayed');
    const promoteAll = await put('/promote');
    t.is(promoteAll.status, 200, promoteAll.text);
    t.is(await queue.getJobState('later-b'), 'waiting');

    // Pause and resume the queue, then every queue.
    t.is((await put('/pause')).status, 200);
    t.true(await queue.isPaused());
    t.is((await put('/resume')).status, 200);
    t.false(await queue.isPaused());
    t.is((await call(s.api, 'PUT', `${BOARD}/api/queues/pause`, { headers: RIGHT })).status, 200);
    t.true(await queue.isPaused());
    t.is((await call(s.api, 'PUT', `${BOARD}/api/queues/resume`, { headers: RIGHT })).status, 200);
    t.false(await queue.isPaused());

    // Clean a whole status. The board only cleans jobs finished more than 5 s ago.
    const [old] = await makeDeadOrders(s, 1);
    await waitForJobState(s, old, 'failed');
    await new Promise((resolve) => setTimeout(resolve, 5200));
    const clean = await put('/clean/failed');
    t.is(clean.status, 200, clean.text);
    t.is(await queue.getJob(old), undefined);
    t.is((await queue.getJobCounts('failed')).failed, 0);
  },
);

test.serial(
  'when a dead job is retried from the board and attempts keep failing, then the order gets a fresh series with back-off and ends FAILED again',
  async (t) => {
    const backoffMs = 300;
    const s = await system('board_retry_fail', { JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: String(backoffMs) });
    await s.startWorker({ FAILURE_RATE: '1' });
    const [id] = await postOrders(s, 1);
    const [dead] = await waitForOrders(s, [id], 'FAILED', (o) => o.status === 'FAILED');
    await waitForJobState(s, id, 'failed');
    t.is(dead.attempts, 2);

    const res = await call(s.api, 'PUT', `${BOARD}/api/queues/orders/${id}/retry`, { headers: RIGHT });
    t.is(res.status, 204, res.text);

    const [again] = await waitForOrders(
      s,
      [id],
      'FAILED after 4 attempts',
      (o) => o.status === 'FAILED' && o.attempts === 4,
    );
    await waitForJobState(s, id, 'failed');
    const series = transitionsOf(again.history).slice(transitionsOf(dead.history).length);
    t.deepEqual(
      series.map((h) => [h.status, h.attempt ?? null, h.reason ?? null]),
      [
        ['PROCESSING', 1, DASHBOARD_RETRY_REASON],
        ['PENDING', null, `simulated failure of ${id} on attempt 3`],
        ['PROCESSING', 2, null],
        ['FAILED', null, `simulated failure of ${id} on attempt 4`],
      ],
    );
    const gap = series[2].at.getTime() - series[1].at.getTime();
    t.log(`back-off before the second attempt of the new series: ${gap} ms (base ${backoffMs} ms)`);
    t.true(gap >= backoffMs / 2 - 5, `the retry waited its back-off (${gap} ms)`);
    const job = await s.api.container.queue.getJob(id);
    t.is(job?.attemptsMade, 2, 'the job spent a full series again');
    t.is(await s.effects(id), 0);
  },
);

test.serial(
  'when a dead job is retried from the board and the business step works again, then the order ends PROCESSED with one effect',
  async (t) => {
    const s = await system('board_retry_ok');
    const [id, untouched] = await makeDeadOrders(s, 2);
    const dead = await s.order(id);
    await s.startWorker({ FAILURE_RATE: '0' });

    const res = await call(s.api, 'PUT', `${BOARD}/api/queues/orders/${id}/retry`, { headers: RIGHT });
    t.is(res.status, 204, res.text);

    const [done] = await waitForOrders(s, [id], 'PROCESSED', (o) => o.status === 'PROCESSED');
    t.deepEqual(
      transitionsOf(done.history)
        .slice(transitionsOf(dead.history).length - 1)
        .map((h) => [h.status, h.attempt ?? null, h.reason ?? null]),
      [
        ['FAILED', null, `simulated failure of ${id} on attempt 2`],
        ['PROCESSING', 1, DASHBOARD_RETRY_REASON],
        ['PROCESSED', null, null],
      ],
    );
    t.is(done.attempts, 3);
    t.is(await s.effects(id), 1);
    await waitForJobState(s, id, 'completed');
    t.is((await s.order(untouched)).status, 'FAILED', 'only the retried order came back');
  },
);

test.serial(
  'when the board lists dead jobs, then their stack traces show file names, no file-system paths, and are not cached',
  async (t) => {
    const s = await system('board_paths');
    const [dead] = await makeDeadOrders(s, 1);
    await waitForJobState(s, dead, 'failed');
    const job = await s.api.container.queue.getJob(dead);
    t.true(
      (job?.stacktrace ?? []).some((frame) => /\/[^\s()]+\/[^\s()]+\.[jt]s:\d+/.test(frame)),
      'the stored trace has absolute paths (what the logs keep)',
    );
    const res = await call(s.api, 'GET', `${BOARD}/api/queues?activeQueue=orders&status=failed&page=1`, {
      headers: RIGHT,
    });
    t.is(res.status, 200, res.text);
    t.is(res.headers.get('cache-control'), 'no-store');
    t.true(res.text.includes(dead), 'the dead job is listed');
    // Frames name .ts files when source maps are on (the tests run with them), .js files otherwise.
    t.regex(res.text, /\.[jt]s:\d+/, 'frames keep their file names and lines');
    t.notRegex(res.text, /\/(?:work|home|srv|usr|tmp|app)\/[^\s"()]*\.[jt]s/, 'no absolute path is shown');
  },
);
