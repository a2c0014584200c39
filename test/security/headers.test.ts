import { createHash, randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { call, validOrder, type HttpResult } from '../helpers/api-http.js';

/*
 * Response headers of the api: security headers suited to a JSON API on every kind of response, and
 * CORS off unless an origin is configured (then for that exact origin only). That a forced 500 never
 * leaks a stack is covered by test/unit/error-middleware.test.ts (a fake ctx), not here.
 */

const ALLOWED = 'https://shop.example';
const key = randomBytes(32).toString('base64url');
const API_KEYS = `shop-a:${createHash('sha256').update(key).digest('hex')}`;

let plain: TestApi;
let withCors: TestApi;

test.before(async () => {
  [plain, withCors] = await Promise.all([
    startTestApi('sec_headers', { RATE_LIMIT_PER_MINUTE: '0' }),
    startTestApi('sec_headers_cors', { RATE_LIMIT_PER_MINUTE: '0', CORS_ORIGINS: ALLOWED, API_KEYS }),
  ]);
});

test.after.always(async () => {
  await Promise.all([plain?.close(), withCors?.close()]);
});

function assertSecurityHeaders(t: ExecutionContext, res: HttpResult<unknown>, label: string): void {
  const h = res.headers;
  t.is(h.get('x-content-type-options'), 'nosniff', `${label}: X-Content-Type-Options`);
  t.is(h.get('x-frame-options'), 'DENY', `${label}: X-Frame-Options`);
  t.is(h.get('cache-control'), 'no-store', `${label}: Cache-Control`);
  t.regex(h.get('content-security-policy') ?? '', /default-src 'none'/, `${label}: CSP lets nothing load`);
  t.regex(h.get('content-security-policy') ?? '', /frame-ancestors 'none'/, `${label}: CSP forbids framing`);
  t.is(h.get('referrer-policy'), 'no-referrer', `${label}: Referrer-Policy`);
  t.is(h.get('x-powered-by'), null, `${label}: no X-Powered-By`);
  t.is(h.get('server'), null, `${label}: no Server banner`);
  t.regex(h.get('content-type') ?? '', /^application\/json/, `${label}: JSON, never sniffed as HTML`);
}

test('when the api answers (201, 200, 400, 404, 413, 415), then every response carries the security headers', async (t) => {
  const created = await call(plain, 'POST', '/orders', { json: validOrder() });
  t.is(created.status, 201);
  const cases: Array<[string, HttpResult<unknown>]> = [
    ['201 POST /orders', created],
    ['200 GET /orders', await call(plain, 'GET', '/orders')],
    ['200 GET /orders/:id', await call(plain, 'GET', `/orders/${(created.body as { id: string }).id}`)],
    ['400 validation', await call(plain, 'POST', '/orders', { json: { customerId: '<script>' } })],
    ['404 unknown path', await call(plain, 'GET', '/nope')],
    [
      '413 too large',
      await call(plain, 'POST', '/orders', {
        body: `{"a":"${'x'.repeat(200_000)}"}`,
        headers: { 'content-type': 'application/json' },
      }),
    ],
    [
      '415 wrong type',
      await call(plain, 'POST', '/orders', { body: '<order/>', headers: { 'content-type': 'text/html' } }),
    ],
  ];
  for (const [label, res] of cases) assertSecurityHeaders(t, res, label);
});

test('when a request is refused for lack of a key, then the 401 carries the security headers too', async (t) => {
  const res = await call(withCors, 'GET', '/orders');
  t.is(res.status, 401);
  assertSecurityHeaders(t, res, '401');
});

test('when CORS_ORIGINS is not set, then no response allows any origin, preflight included', async (t) => {
  for (const origin of [ALLOWED, 'https://evil.example', 'null']) {
    const get = await call(plain, 'GET', '/orders', { headers: { origin } });
    t.is(get.status, 200);
    t.is(get.headers.get('access-control-allow-origin'), null, `GET from ${origin}`);
    const preflight = await call(plain, 'OPTIONS', '/orders', {
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    t.is(preflight.headers.get('access-control-allow-origin'), null, `preflight from ${origin}`);
    t.is(preflight.headers.get('access-control-allow-methods'), null, `preflight from ${origin}: no methods`);
  }
});

test('when CORS_ORIGINS names an origin, then exactly that origin is allowed and no other', async (t) => {
  const auth = { authorization: `Bearer ${key}` };
  const get = await call(withCors, 'GET', '/orders', { headers: { ...auth, origin: ALLOWED } });
  t.is(get.status, 200);
  t.is(get.headers.get('access-control-allow-origin'), ALLOWED);
  t.regex(get.headers.get('vary') ?? '', /Origin/i, 'Vary: Origin, so caches keep origins apart');
  t.is(get.headers.get('access-control-allow-credentials'), null, 'no credentialed CORS (keys are not cookies)');

  const preflight = await call(withCors, 'OPTIONS', '/orders', {
    headers: {
      origin: ALLOWED,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type',
    },
  });
  t.is(preflight.status, 204, 'the preflight needs no key');
  t.is(preflight.headers.get('access-control-allow-origin'), ALLOWED);
  t.regex(preflight.headers.get('access-control-allow-methods') ?? '', /POST/);

  for (const origin of [
    'https://evil.example',
    `${ALLOWED}.evil.example`,
    'http://shop.example',
    'null',
    `${ALLOWED}:8443`,
  ]) {
    const other = await call(withCors, 'GET', '/orders', { headers: { ...auth, origin } });
    t.is(other.headers.get('access-control-allow-origin'), null, `GET from ${origin}`);
    const otherPreflight = await call(withCors, 'OPTIONS', '/orders', {
      headers: { origin, 'access-control-request-method': 'POST' },
    });
    t.is(otherPreflight.headers.get('access-control-allow-origin'), null, `preflight from ${origin}`);
    t.not(otherPreflight.status, 204, `preflight from ${origin} is not accepted`);
  }
});
