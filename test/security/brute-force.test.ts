import { createHash, randomBytes } from 'node:crypto';
import test from 'ava';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { assertError, call } from '../helpers/api-http.js';
import { stripFilePaths } from '../../api/http/admin-board.js';
import { callFrom } from './local-address.js';

/*
 * Credentials cannot be guessed without limit (AUTH_FAILURE_LIMIT failures per address per 15 min,
 * then 429 before any comparison), a legitimate client's quota is untouched by others' failures,
 * the board is rate-limited and unframeable, and refusals are counted in auth_refusals_total.
 */

const FAILURES = 4;
const LIMIT = 5;
const newKey = () => randomBytes(32).toString('base64url');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const KEY = newKey();
const USER = 'ops';
const PASSWORD = 'correct-horse-battery-staple';
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;

const apis: TestApi[] = [];
async function guardedApi(label: string, env: Record<string, string> = {}): Promise<TestApi> {
  const api = await startTestApi(label, {
    API_KEYS: `shop-a:${sha256(KEY)}`,
    RATE_LIMIT_PER_MINUTE: String(LIMIT),
    AUTH_FAILURE_LIMIT: String(FAILURES),
    BULL_BOARD_USER: USER,
    BULL_BOARD_PASSWORD: PASSWORD,
    ...env,
  });
  apis.push(api);
  return api;
}

test.after.always(async () => {
  await Promise.all(apis.map((api) => api.close()));
});

async function refusals(api: TestApi, realm: string, reason: string): Promise<number> {
  const metric = await api.container.registry.getSingleMetric('auth_refusals_total')?.get();
  return metric?.values.find((v) => v.labels.realm === realm && v.labels.reason === reason)?.value ?? 0;
}

test('when wrong API keys are guessed from one address, then 429 follows the limit, even for the right key, and another address keeps its quota', async (t) => {
  const api = await guardedApi('sec_bf_keys');
  const attacker = '127.0.0.2';
  for (let n = 1; n <= FAILURES; n += 1) {
    const res = await callFrom(api.baseUrl, attacker, 'GET', '/orders', { authorization: `Bearer ${newKey()}` });
    assertError(t, res, { status: 401, code: 'UNAUTHORIZED' }, `guess ${n}`);
  }
  for (const [label, headers] of [
    ['another guess', { authorization: `Bearer ${newKey()}` }],
    ['no key at all', {}],
    ['the right key', { authorization: `Bearer ${KEY}` }],
  ] as const) {
    const res = await callFrom(api.baseUrl, attacker, 'GET', '/orders', headers);
    assertError(t, res, { status: 429, code: 'RATE_LIMITED' }, label);
    const retryAfter = Number(res.headers.get('retry-after'));
    t.true(retryAfter > 60 && retryAfter <= 15 * 60, `${label}: Retry-After ${retryAfter} s (blocked for minutes)`);
  }
  // The legitimate client, elsewhere: its request quota is whole.
  const own = await callFrom(api.baseUrl, '127.0.0.1', 'GET', '/orders', { authorization: `Bearer ${KEY}` });
  t.is(own.status, 200, own.text);
  t.is(own.headers.get('ratelimit-remaining'), String(LIMIT - 1), 'no failure spent the client quota');
  t.is(await refusals(api, 'api_key', 'invalid'), FAILURES);
  t.is(await refusals(api, 'api_key', 'limited'), 3);
});

test('when requests without any key keep coming from one address, then they meet 429 too', async (t) => {
  const api = await guardedApi('sec_bf_nokey');
  const statuses: number[] = [];
  for (let n = 0; n < 8; n += 1) statuses.push((await callFrom(api.baseUrl, '127.0.0.3', 'GET', '/orders')).status);
  t.deepEqual(statuses, [...Array(FAILURES).fill(401), ...Array(8 - FAILURES).fill(429)]);
});

test('when the board password is guessed, then 429 follows the limit for that address; the operator elsewhere gets in', async (t) => {
  const api = await guardedApi('sec_bf_board', { RATE_LIMIT_PER_MINUTE: '1000' });
  const attacker = '127.0.0.4';
  for (let n = 1; n <= FAILURES; n += 1) {
    const res = await callFrom(api.baseUrl, attacker, 'GET', '/admin/queues/api/queues', {
      authorization: basic(USER, `guess-${n}-${newKey()}`),
    });
    t.is(res.status, 401, `guess ${n}`);
  }
  for (const password of ['yet-another-guess', PASSWORD]) {
    const res = await callFrom(api.baseUrl, attacker, 'GET', '/admin/queues/api/queues', {
      authorization: basic(USER, password),
    });
    assertError(t, res, { status: 429, code: 'RATE_LIMITED' }, password === PASSWORD ? 'the right one' : 'a guess');
    t.is(res.headers.get('x-frame-options'), 'DENY', 'the 429 carries the board headers');
  }
  const operator = await callFrom(api.baseUrl, '127.0.0.1', 'GET', '/admin/queues/api/queues', {
    authorization: basic(USER, PASSWORD),
  });
  t.is(operator.status, 200, 'one address cannot lock the operator out');
  t.is(await refusals(api, 'board', 'invalid'), FAILURES);
  t.is(await refusals(api, 'board', 'limited'), 2);
});

test('when the board user is guessed from many addresses, then the user meets 429 after its larger allowance', async (t) => {
  const api = await guardedApi('sec_bf_board_user', { AUTH_FAILURE_LIMIT: '1', RATE_LIMIT_PER_MINUTE: '1000' });
  // IDENTITY_FACTOR (5) × 1 failure: five addresses, one guess each, then the user is blocked.
  for (let n = 1; n <= 5; n += 1) {
    const res = await callFrom(api.baseUrl, `127.0.1.${n}`, 'GET', '/admin/queues/api/queues', {
      authorization: basic(USER, newKey()),
    });
    t.is(res.status, 401, `address ${n}`);
  }
  const sixth = await callFrom(api.baseUrl, '127.0.1.6', 'GET', '/admin/queues/api/queues', {
    authorization: basic(USER, newKey()),
  });
  t.is(sixth.status, 429, 'the sixth address guessing the same user');
  const otherUser = await callFrom(api.baseUrl, '127.0.1.7', 'GET', '/admin/queues/api/queues', {
    authorization: basic('someone-else', newKey()),
  });
  t.is(otherUser.status, 401, 'another user name is not blocked');
});

test('when the board is called within its credentials, then it is rate-limited per address with RateLimit headers', async (t) => {
  const api = await guardedApi('sec_bf_board_rl');
  const headers = { authorization: basic(USER, PASSWORD) };
  for (let n = 1; n <= LIMIT; n += 1) {
    const res = await call(api, 'GET', '/admin/queues/api/queues', { headers });
    t.is(res.status, 200, `call ${n}`);
    t.is(res.headers.get('ratelimit-limit'), String(LIMIT));
    t.is(res.headers.get('ratelimit-remaining'), String(LIMIT - n));
  }
  const limited = await call(api, 'GET', '/admin/queues', { headers });
  assertError(t, limited, { status: 429, code: 'RATE_LIMITED' });
  t.truthy(limited.headers.get('retry-after'));
});

test('when any board response is sent, then it cannot be framed and carries the page headers; its API is not cached', async (t) => {
  const api = await guardedApi('sec_bf_board_headers', { RATE_LIMIT_PER_MINUTE: '1000' });
  const headers = { authorization: basic(USER, PASSWORD) };
  const page = await call(api, 'GET', '/admin/queues', { headers });
  const script = /src="(static\/js\/[^"]+\.js)"/.exec(page.text)?.[1];
  t.truthy(script, 'the page names its scripts');
  const responses = {
    page,
    asset: await call(api, 'GET', `/admin/queues/${script}`, { headers }),
    api: await call(api, 'GET', '/admin/queues/api/queues', { headers }),
    stats: await call(api, 'GET', '/admin/queues/api/redis/stats', { headers }),
    unauthorized: await call(api, 'GET', '/admin/queues'),
  };
  for (const [label, res] of Object.entries(responses)) {
    t.is(res.headers.get('x-frame-options'), 'DENY', `${label}: X-Frame-Options`);
    const csp = res.headers.get('content-security-policy') ?? '';
    t.regex(csp, /frame-ancestors 'none'/, `${label}: CSP frame-ancestors`);
    t.regex(csp, /script-src 'self'/, `${label}: scripts only from the board`);
    t.is(res.headers.get('x-content-type-options'), 'nosniff', `${label}: nosniff`);
    t.is(res.headers.get('referrer-policy'), 'no-referrer', `${label}: Referrer-Policy`);
  }
  for (const label of ['api', 'stats'] as const) {
    t.is(responses[label].headers.get('cache-control'), 'no-store', `${label}: Cache-Control`);
  }
  t.is(responses.stats.status, 200);
  t.false('os' in (responses.stats.body as object), 'the Redis host system is not shown');
});

test('when a stack trace holds file-system paths, then the board shows file names only', (t) => {
  const trace = [
    'Error: payment declined',
    '    at charge (/srv/orders/dist/worker/business-step.js:41:11)',
    '    at async process (file:///home/app/dist/worker/processor.js:12:3)',
    '    at C:\\app\\dist\\x.js:1:2',
  ].join('\n');
  const stripped = stripFilePaths(trace);
  t.is(
    stripped,
    [
      'Error: payment declined',
      '    at charge (business-step.js:41:11)',
      '    at async process (processor.js:12:3)',
      '    at x.js:1:2',
    ].join('\n'),
  );
  t.false(stripped.includes('/srv/'));
});
