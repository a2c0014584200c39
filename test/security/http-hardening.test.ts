import http from 'node:http';
import { connect } from 'node:net';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import test from 'ava';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { assertError, call, validOrder } from '../helpers/api-http.js';

/*
 * Hostile requests a client can send on its own: undecodable bodies are 4xx (never 5xx), a refused
 * body does not strand a keep-alive connection, `Expect: 100-continue` over the limit is 413 at once,
 * echoed input is cut short, CORS exposes what scripts need, and the probes answer GET/HEAD only.
 */

let api: TestApi;
test.before(async () => {
  api = await startTestApi('sec_http', { CORS_ORIGINS: 'https://shop.example' });
});
test.after.always(async () => {
  await api?.close();
});

const ORDER = Buffer.from(JSON.stringify(validOrder()));

const ENCODED: ReadonlyArray<readonly [string, string, Uint8Array, number, string]> = [
  ['gzip that is not compressed', 'gzip', ORDER, 400, 'INVALID_JSON'],
  ['br that is not compressed', 'br', ORDER, 400, 'INVALID_JSON'],
  ['deflate that is not compressed', 'deflate', ORDER, 400, 'INVALID_JSON'],
  ['gzip cut in half', 'gzip', gzipSync(ORDER).subarray(0, 20), 400, 'INVALID_JSON'],
  ['br labelled gzip', 'gzip', brotliCompressSync(ORDER), 400, 'INVALID_JSON'],
  ['an unknown coding', 'x-unknown', ORDER, 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ['two codings', 'gzip, br', ORDER, 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ['an upper-case coding', 'GZIP', gzipSync(ORDER), 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ['compress', 'compress', ORDER, 415, 'UNSUPPORTED_MEDIA_TYPE'],
];

for (const [label, encoding, body, status, code] of ENCODED) {
  test(`when a body is ${label}, then it answers ${status} ${code}, never 5xx`, async (t) => {
    const res = await call(api, 'POST', '/orders', {
      body: body,
      headers: { 'content-type': 'application/json', 'content-encoding': encoding },
    });
    assertError(t, res, { status, code, field: 'Content-Encoding' });
  });
}

test('when gzip and br bodies are well-formed, then the order is created', async (t) => {
  for (const [encoding, body] of [
    ['gzip', gzipSync(ORDER)],
    ['br', brotliCompressSync(ORDER)],
  ] as const) {
    const res = await call(api, 'POST', '/orders', {
      body,
      headers: { 'content-type': 'application/json', 'content-encoding': encoding },
    });
    t.is(res.status, 201, `${encoding}: ${res.text}`);
  }
});

/** Raw bytes to the api; resolves with everything it sent back before closing (or within `ms`). */
function raw(bytes: string | Buffer, ms = 3000): Promise<string> {
  const { port } = new URL(api.baseUrl);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on('data', (c) => (text += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(bytes);
  });
}

const FRAMINGS: ReadonlyArray<readonly [string, string]> = [
  ['a chunk size that is not hex', 'Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n'],
  ['a chunk longer than announced', 'Transfer-Encoding: chunked\r\n\r\n2\r\n{"a":1}\r\n0\r\n\r\n'],
  [
    'Transfer-Encoding and Content-Length both',
    'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
  ],
  ['a transfer coding other than chunked last', 'Transfer-Encoding: chunked, gzip\r\n\r\n2\r\n{}\r\n0\r\n\r\n'],
  ['two Content-Length values', 'Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}'],
  ['a negative Content-Length', 'Content-Length: -1\r\n\r\n{}'],
  ['an oversized chunk size', 'Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n'],
];

for (const [label, rest] of FRAMINGS) {
  test(`when a request has ${label}, then the answer is a 4xx, never 5xx`, async (t) => {
    const reply = await raw(`POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${rest}`);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0);
    t.true(status >= 400 && status < 500, `answered ${status || 'nothing'}: ${reply.slice(0, 120)}`);
  });
}

test('when Expect: 100-continue comes with a Content-Length over the limit, then 413 at once, without 100 Continue', async (t) => {
  const reply = await raw(
    'POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n',
  );
  t.regex(reply, /^HTTP\/1\.1 413 /, reply.slice(0, 60));
  t.notRegex(reply, /100 Continue/);
  t.regex(reply, /connection: close/i, 'the connection ends: the body was never invited');
  t.regex(reply, /"code":"PAYLOAD_TOO_LARGE"/);
});

test('when Expect: 100-continue comes with a body within the limit, then 100 Continue, then the answer', async (t) => {
  const body = JSON.stringify(validOrder());
  const { port } = new URL(api.baseUrl);
  const reply = await new Promise<string>((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    socket.on('data', (c) => {
      text += c.toString('latin1');
      if (text.startsWith('HTTP/1.1 100') && !text.includes('201')) socket.write(body);
      if (/\r\n\r\n\{.*\}$/s.test(text)) socket.end();
    });
    socket.on('close', () => resolve(text));
    socket.write(
      `POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
    );
  });
  t.regex(reply, /^HTTP\/1\.1 100 Continue/);
  t.regex(reply, /HTTP\/1\.1 201 /);
});

/**
 * A request on a keep-alive agent with one socket, whose body is `size` bytes sent in 64 KiB chunks
 * (chunked framing unless `length` is set), then a GET on the same agent.
 */
async function refusedThenNext(
  path: string,
  headers: Record<string, string>,
  size: number,
  withLength: boolean,
): Promise<{ first: number; second: number; secondMs: number; reused: boolean }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const [method, target] = path.includes(' ') ? path.split(' ') : ['POST', path];
    const url = new URL(target, api.baseUrl);
    const first = await new Promise<{ status: number; socket: unknown }>((resolve, reject) => {
      const req = http.request(
        url,
        { method, agent, headers: { ...headers, ...(withLength ? { 'content-length': String(size) } : {}) } },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket }));
        },
      );
      req.on('error', reject);
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < size) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    const started = performance.now();
    const second = await new Promise<{ status: number; socket: unknown }>((resolve, reject) => {
      const req = http.get(new URL('/openapi.json', api.baseUrl), { agent, timeout: 4000 }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket }));
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 4 s')));
      req.on('error', reject);
    });
    return {
      first: first.status,
      second: second.status,
      secondMs: performance.now() - started,
      reused: first.socket === second.socket,
    };
  } finally {
    agent.destroy();
  }
}

const MIB = 1024 * 1024;
const REFUSALS: ReadonlyArray<readonly [string, string, Record<string, string>, number, boolean, number]> = [
  ['a chunked 2 MiB body (413)', '/orders', { 'content-type': 'application/json' }, 2 * MIB, false, 413],
  ['a 2 MiB body with its length (413)', '/orders', { 'content-type': 'application/json' }, 2 * MIB, true, 413],
  ['a chunked 2 MiB text body (415)', '/orders', { 'content-type': 'text/plain' }, 2 * MIB, false, 415],
  [
    'a 1 MiB body of an unknown coding (415)',
    '/orders',
    { 'content-type': 'application/json', 'content-encoding': 'x-zip' },
    MIB,
    true,
    415,
  ],
  [
    'a chunked 2 MiB body to a bad query (400)',
    'GET /orders?limit=nope',
    { 'content-type': 'application/json' },
    2 * MIB,
    false,
    400,
  ],
];

for (const [label, path, headers, size, withLength, status] of REFUSALS) {
  test.serial(
    `when ${label} is refused on a keep-alive connection, then the client's next request is answered at once`,
    async (t) => {
      const result = await refusedThenNext(path, headers, size, withLength);
      t.is(result.first, status);
      t.is(result.second, 200);
      t.true(result.secondMs < 2000, `answered in ${Math.round(result.secondMs)} ms`);
    },
  );
}

test('when a valid JSON body has a __proto__ key, then 400 VALIDATION_ERROR names it in details', async (t) => {
  const item = '{"sku":"S","quantity":1,"unitPriceCents":1}';
  for (const [where, body, field] of [
    ['top level', `{"customerId":"c","currency":"EUR","items":[${item}],"__proto__":{"x":1}}`, '__proto__'],
    [
      'an item',
      `{"customerId":"c","currency":"EUR","items":[{"sku":"S","quantity":1,"unitPriceCents":1,"__proto__":{}}]}`,
      'items.0.__proto__',
    ],
    [
      'metadata',
      `{"customerId":"c","currency":"EUR","items":[${item}],"metadata":{"__proto__":"x"}}`,
      'metadata.__proto__',
    ],
    ['an escaped key', `{"customerId":"c","currency":"EUR","items":[${item}],"\\u005f_proto__":{}}`, '__proto__'],
  ] as const) {
    const res = await call(api, 'POST', '/orders', { body, headers: { 'content-type': 'application/json' } });
    assertError(t, res, { status: 400, code: 'VALIDATION_ERROR', field }, where);
  }
});

test('when a path of 8 KiB is not found, then the 404 echoes only the start of it', async (t) => {
  const path = `/${'a'.repeat(8 * 1024)}`;
  const res = await call(api, 'GET', path);
  assertError(t, res, { status: 404, code: 'NOT_FOUND' });
  t.true(res.text.length < 1024, `404 body is ${res.text.length} bytes`);
});

test('when CORS is on, then responses expose the headers scripts need and the preflight offers only served methods', async (t) => {
  const origin = 'https://shop.example';
  const res = await call(api, 'GET', '/openapi.json', { headers: { origin } });
  const exposed = (res.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/,\s*/);
  for (const name of [
    'location',
    'x-request-id',
    'idempotent-replayed',
    'retry-after',
    'ratelimit-limit',
    'ratelimit-remaining',
    'ratelimit-reset',
  ]) {
    t.true(exposed.includes(name), `exposes ${name}: ${exposed.join(', ')}`);
  }
  const preflight = await call(api, 'OPTIONS', '/orders', {
    headers: { origin, 'access-control-request-method': 'POST' },
  });
  t.is(preflight.status, 204);
  const methods = (preflight.headers.get('access-control-allow-methods') ?? '').split(/,\s*/);
  t.deepEqual([...methods].sort(), ['GET', 'HEAD', 'POST']);
});

test('when the api probes are called, then only GET and HEAD answer, with X-Request-Id, each body its own', async (t) => {
  for (const path of ['/health/live', '/health/ready']) {
    const res = await call(api, 'GET', path);
    t.is(res.status, 200, `${path}: ${res.text}`);
    t.regex(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, `${path}: X-Request-Id`);
    t.is((await call(api, 'HEAD', path)).status, 200, `${path}: HEAD`);
    for (const method of ['POST', 'DELETE', 'PUT', 'PATCH']) {
      const refused = await call(api, method, path);
      assertError(t, refused, { status: 405, code: 'METHOD_NOT_ALLOWED' }, `${method} ${path}`);
      t.is(refused.headers.get('allow'), 'GET, HEAD');
    }
  }
  const ready = await call(api, 'GET', '/health/ready');
  t.is((ready.body as { mongodb?: { status?: string } }).mongodb?.status, 'up');
  const live = await call(api, 'GET', '/health/live');
  t.deepEqual(Object.keys(live.body).sort(), ['status', 'uptimeSeconds'], 'liveness shows nothing of readiness');
});

test('when the api drains for shutdown, then readiness is 503 and liveness stays 200', async (t) => {
  const draining = await startTestApi('sec_http_drain');
  try {
    draining.container.startDraining();
    t.is((await call(draining, 'GET', '/health/ready')).status, 503);
    t.is((await call(draining, 'GET', '/health/live')).status, 200);
  } finally {
    await draining.close();
  }
});
