import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { assertError, call, validOrder, type HttpResult } from '../helpers/api-http.js';
import { uniqueName } from '../helpers/services.js';
import { callFrom } from './local-address.js';

/*
 * Per-client rate limiting (RATE_LIMIT_PER_MINUTE=5 here): the 6th request of a minute is a 429,
 * other clients keep their own budget, api instances sharing Redis share it, and without Redis the
 * in-memory insurance limiter still answers and still limits. Each test has its own api (own limiter
 * keys), so the one-minute windows never overlap.
 */

const LIMIT = 5;
const newKey = () => randomBytes(32).toString('base64url');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const KEYS = { shopA: newKey(), shopB: newKey() } as const;
const API_KEYS = `shop-a:${sha256(KEYS.shopA)},shop-b:${sha256(KEYS.shopB)}`;
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

const apis: TestApi[] = [];

async function limitedApi(label: string, env: Record<string, string> = {}): Promise<TestApi> {
  const api = await startTestApi(label, { API_KEYS, RATE_LIMIT_PER_MINUTE: String(LIMIT), ...env });
  apis.push(api);
  return api;
}

test.after.always(async () => {
  await Promise.all(apis.map((api) => api.close()));
});

function assertAllowed(t: ExecutionContext, res: HttpResult<unknown>, remaining: number, label: string): void {
  t.true(res.status < 400, `${label}: allowed (${res.status}: ${res.text.slice(0, 200)})`);
  t.is(res.headers.get('ratelimit-limit'), String(LIMIT), `${label}: RateLimit-Limit`);
  t.is(res.headers.get('ratelimit-remaining'), String(remaining), `${label}: RateLimit-Remaining`);
  const reset = Number(res.headers.get('ratelimit-reset'));
  t.true(reset >= 0 && reset <= 60, `${label}: RateLimit-Reset ${reset} within the minute`);
}

function assertLimited(t: ExecutionContext, res: HttpResult<unknown>, label: string): void {
  assertError(t, res, { status: 429, code: 'RATE_LIMITED' }, label);
  const retryAfter = Number(res.headers.get('retry-after'));
  t.true(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `${label}: Retry-After ${retryAfter}`);
  t.is(res.headers.get('ratelimit-limit'), String(LIMIT), `${label}: RateLimit-Limit`);
  t.is(res.headers.get('ratelimit-remaining'), '0', `${label}: RateLimit-Remaining`);
  t.is(res.headers.get('ratelimit-reset'), String(retryAfter), `${label}: RateLimit-Reset = Retry-After`);
}

test('when a client makes a 6th request within a minute, then it gets 429 RATE_LIMITED; another client does not', async (t) => {
  const api = await limitedApi('sec_rl_one');
  // Mixed routes: the budget is the client's, not a route's.
  const first = await call(api, 'POST', '/orders', { json: validOrder(), headers: bearer(KEYS.shopA) });
  t.is(first.status, 201);
  assertAllowed(t, first, LIMIT - 1, 'request 1');
  for (let n = 2; n <= LIMIT; n += 1) {
    assertAllowed(t, await call(api, 'GET', '/orders', { headers: bearer(KEYS.shopA) }), LIMIT - n, `request ${n}`);
  }
  const before = await api.container.models.Order.countDocuments();
  assertLimited(t, await call(api, 'GET', '/orders', { headers: bearer(KEYS.shopA) }), 'request 6');
  assertLimited(
    t,
    await call(api, 'POST', '/orders', { json: validOrder(), headers: bearer(KEYS.shopA) }),
    'request 7',
  );
  t.is(await api.container.models.Order.countDocuments(), before, 'a limited POST stores nothing');

  assertAllowed(t, await call(api, 'GET', '/orders', { headers: bearer(KEYS.shopB) }), LIMIT - 1, 'shop-b');
  // Probes and metrics are never limited (a scraper or kubelet must not be locked out).
  for (let n = 0; n < LIMIT + 2; n += 1) t.is((await call(api, 'GET', '/metrics')).status, 200, `/metrics ${n}`);
});

test('when requests carry a wrong key, then they are 401, then 429 once the address failed too often, and never spend the real client budget', async (t) => {
  const api = await limitedApi('sec_rl_wrong');
  const statuses: number[] = [];
  for (let n = 0; n < LIMIT * 3; n += 1) {
    const res = await callFrom(api.baseUrl, '127.0.0.2', 'GET', '/orders', { authorization: `Bearer ${newKey()}` });
    statuses.push(res.status);
  }
  // AUTH_FAILURE_LIMIT's default: 10 failures, then the address is blocked.
  t.deepEqual(statuses, [...Array(10).fill(401), ...Array(LIMIT * 3 - 10).fill(429)]);
  assertAllowed(
    t,
    await call(api, 'GET', '/orders', { headers: bearer(KEYS.shopA) }),
    LIMIT - 1,
    'shop-a after the flood',
  );
});

/** GET from a given loopback address, so the api sees distinct client IPs (127.0.0.0/8 is all local). */
function getFrom(api: TestApi, localAddress: string, path: string): Promise<HttpResult<unknown>> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, api.baseUrl);
    const req = http.get(url, { localAddress, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers, body, text, ms: 0 });
      });
    });
    req.on('error', reject);
  });
}

test('when anonymous callers use the open paths, then each IP has its own budget, apart from the clients', async (t) => {
  const api = await limitedApi('sec_rl_open');
  for (let n = 1; n <= LIMIT; n += 1) {
    assertAllowed(t, await getFrom(api, '127.0.0.2', '/openapi.json'), LIMIT - n, `127.0.0.2 request ${n}`);
  }
  assertLimited(t, await getFrom(api, '127.0.0.2', '/openapi.json'), '127.0.0.2 request 6');
  // Before the fix every anonymous caller shared one `client:public` budget: one IP could lock all
  // others (operators on the board included) out of the open paths for a minute.
  assertAllowed(t, await getFrom(api, '127.0.0.3', '/openapi.json'), LIMIT - 1, 'another IP');
  assertAllowed(t, await call(api, 'GET', '/orders', { headers: bearer(KEYS.shopA) }), LIMIT - 1, 'a client');
});

test('when two api instances share Redis, then a client budget is shared between them', async (t) => {
  const prefix = uniqueName('sec_rl_shared');
  const one = await limitedApi('sec_rl_shared1', { QUEUE_PREFIX: prefix });
  const two = await limitedApi('sec_rl_shared2', { QUEUE_PREFIX: prefix });
  const sequence = [one, two, one, two, one];
  for (const [i, api] of sequence.entries()) {
    assertAllowed(
      t,
      await call(api, 'GET', '/orders', { headers: bearer(KEYS.shopA) }),
      LIMIT - 1 - i,
      `request ${i + 1}`,
    );
  }
  assertLimited(t, await call(two, 'GET', '/orders', { headers: bearer(KEYS.shopA) }), 'request 6 on instance two');
  assertLimited(t, await call(one, 'GET', '/orders', { headers: bearer(KEYS.shopA) }), 'request 7 on instance one');
  assertAllowed(t, await call(two, 'GET', '/orders', { headers: bearer(KEYS.shopB) }), LIMIT - 1, 'shop-b');
});

test('when Redis is unreachable, then the api still answers and the in-memory insurance still limits', async (t) => {
  t.timeout(60_000);
  const api = await limitedApi('sec_rl_noredis', { REDIS_URL: 'redis://127.0.0.1:1' });
  const created = await call(api, 'POST', '/orders', { json: validOrder(), headers: bearer(KEYS.shopA) });
  t.is(created.status, 202, `stored, queued later: ${created.text}`);
  assertAllowed(t, created, LIMIT - 1, 'request 1');
  for (let n = 2; n <= LIMIT; n += 1) {
    const res = await call(api, 'GET', '/orders', { headers: bearer(KEYS.shopA) });
    assertAllowed(t, res, LIMIT - n, `request ${n}`);
    t.true(res.ms < 2000, `answered in ${Math.round(res.ms)} ms without Redis`);
  }
  assertLimited(t, await call(api, 'GET', '/orders', { headers: bearer(KEYS.shopA) }), 'request 6');
  assertAllowed(t, await call(api, 'GET', '/orders', { headers: bearer(KEYS.shopB) }), LIMIT - 1, 'shop-b');
});
