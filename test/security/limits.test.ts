import http from 'node:http';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import { SERVER_TIMEOUTS } from '../../api/http/api-server.js';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { assertError, call, postOrder, validOrder } from '../helpers/api-http.js';

/*
 * Abuse limits against the real api in-process, served by createApiServer exactly as api/main.ts
 * serves it (test/helpers/api.ts): body size, memory under a flood of large bodies, slow clients
 * (slowloris and slow bodies), header sizes, page size caps and operator injection in the query.
 */

const CHECK_INTERVAL_MS = 1000; // createApiServer's connectionsCheckingInterval
const SLACK_MS = 4000; // a loaded 2-core CI machine
const TEN_MB = 10 * 1024 * 1024;

let api: TestApi;
let port: number;

test.before(async () => {
  api = await startTestApi('sec_limits', { RATE_LIMIT_PER_MINUTE: '0' });
  port = Number(new URL(api.baseUrl).port);
});

test.after.always(async () => {
  await api?.close();
});

interface Outcome {
  /** The status, when a response arrived (it can, even if the socket is reset afterwards). */
  readonly status?: number;
  /** A socket error (ECONNRESET, EPIPE…) seen before or after the response. */
  readonly error?: string;
}

/** POSTs `body` on its own connection; never rejects (the outcome says what happened). */
function rawPost(body: Buffer, headers: http.OutgoingHttpHeaders, agent: http.Agent): Promise<Outcome> {
  return new Promise((resolve) => {
    let status: number | undefined;
    let error: string | undefined;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      resolve({ status, error });
    };
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/orders', agent, headers });
    req.on('response', (res) => {
      status = res.statusCode;
      res.resume();
      res.on('end', settle);
      res.on('error', (err: NodeJS.ErrnoException) => {
        error ??= err.code ?? err.message;
        settle();
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      error ??= err.code ?? err.message;
      // A reset can arrive while the response is still being read; its 'end' or 'error' settles then.
      if (status === undefined) settle();
    });
    req.end(body);
  });
}

function tally(outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const key = o.status !== undefined ? String(o.status) : `no response (${o.error})`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

async function orderCount(): Promise<number> {
  return api.container.models.Order.countDocuments();
}

/**
 * 100 bodies of 10 MB at once. Node answers each 413 as soon as koa-body sees the size (from
 * Content-Length before reading anything, or after BODY_LIMIT bytes of a chunked body), then reads
 * and discards the rest of the upload so the connection stays usable: the client sees a clean 413,
 * no reset. A reset after the 413 would still be acceptable; it is counted apart, never as a 2xx/5xx.
 */
for (const framing of ['Content-Length', 'chunked'] as const) {
  test.serial(
    `when 100 clients send 10 MB bodies at once (${framing}), then all get 413 and memory stays bounded`,
    async (t) => {
      t.timeout(120_000);
      const before = await orderCount();
      const body = Buffer.alloc(TEN_MB, 0x20); // one buffer shared by all 100 requests
      body.write(JSON.stringify(validOrder()));
      const agent = new http.Agent({ keepAlive: false, maxSockets: 100 });
      const headers: http.OutgoingHttpHeaders = {
        'content-type': 'application/json',
        ...(framing === 'Content-Length' ? { 'content-length': TEN_MB } : {}),
      };
      const rssBefore = process.memoryUsage().rss;
      let peak = rssBefore;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
      const started = Date.now();
      const outcomes = await Promise.all(Array.from({ length: 100 }, () => rawPost(body, headers, agent)));
      clearInterval(sampler);
      agent.destroy();
      const grewMb = (peak - rssBefore) / 1024 / 1024;
      const counts = tally(outcomes);
      t.log(`${JSON.stringify(counts)} in ${Date.now() - started} ms; peak RSS +${grewMb.toFixed(1)} MB`);

      const answered = outcomes.filter((o) => o.status !== undefined);
      const resets = outcomes.filter((o) => o.status === undefined);
      t.true(
        answered.every((o) => o.status === 413),
        `every response is a 413 (no 2xx, no 5xx): ${JSON.stringify(counts)}`,
      );
      t.true(
        resets.every((o) => ['ECONNRESET', 'EPIPE'].includes(o.error ?? '')),
        `the only other outcome is a reset by the server: ${JSON.stringify(counts)}`,
      );
      t.true(answered.length >= 90, `nearly all clients got their 413 before any reset (${answered.length}/100)`);
      // The api runs in this process: 100 × 10 MB buffered would be ~1 GB.
      t.true(grewMb < 200, `peak RSS grew ${grewMb.toFixed(1)} MB (< 200 MB)`);
      t.is(await orderCount(), before, 'nothing stored');
      const alive = await call(api, 'GET', '/openapi.json');
      t.is(alive.status, 200, 'the api still answers');
    },
  );
}

test.serial(
  'when a gzip bomb (50 MB of zeros in ~50 kB) is posted, then it answers 413 without inflating it all',
  async (t) => {
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024), { level: 9 });
    const rssBefore = process.memoryUsage().rss;
    const res = await call(api, 'POST', '/orders', {
      body: new Uint8Array(bomb),
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    });
    const grewMb = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
    t.log(`${bomb.length} bytes compressed; RSS +${grewMb.toFixed(1)} MB`);
    assertError(t, res, { status: 413, code: 'PAYLOAD_TOO_LARGE' });
    t.true(grewMb < 50, `RSS grew ${grewMb.toFixed(1)} MB (< 50 MB: inflation stops at BODY_LIMIT)`);
  },
);

// ---------------------------------------------------------------------------------------------
// Slow clients. These run concurrently (each mostly waits on the server's clock).
// ---------------------------------------------------------------------------------------------

interface Closed {
  readonly ms: number;
  readonly received: string;
}

/**
 * Opens a raw socket, writes `first`, then `drip` every `everyMs` until the server closes the
 * socket (or `giveUpMs` passes). Resolves with when it closed and what the server sent.
 */
function slowClient(options: {
  readonly first: string;
  readonly drip?: string;
  readonly everyMs?: number;
  readonly giveUpMs: number;
}): Promise<Closed> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    const drip = options.drip
      ? setInterval(() => {
          if (!socket.destroyed && socket.writable) socket.write(options.drip as string);
        }, options.everyMs ?? 1000)
      : undefined;
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the socket open for ${options.giveUpMs} ms`));
    }, options.giveUpMs);
    socket.on('connect', () => socket.write(options.first));
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('error', () => undefined); // a reset is a close for this purpose
    socket.on('close', () => {
      clearInterval(drip);
      clearTimeout(giveUp);
      resolve({ ms: Date.now() - started, received });
    });
  });
}

test('when 20 clients send their headers one line at a time (slowloris), then each is closed after headersTimeout', async (t) => {
  const bound = SERVER_TIMEOUTS.headersTimeoutMs + CHECK_INTERVAL_MS + SLACK_MS;
  t.timeout(bound + 10_000);
  const pending = Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      slowClient({
        first: `GET /orders?n=${i} HTTP/1.1\r\nHost: 127.0.0.1\r\n`,
        drip: `X-Slow-${i}: ${'a'.repeat(20)}\r\n`,
        everyMs: 500,
        giveUpMs: bound + 5000,
      }),
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const meanwhile = await call(api, 'GET', '/openapi.json');
  t.is(meanwhile.status, 200, 'other clients are served while the slow ones hang');
  const clients = await pending;
  const times = clients.map((c) => c.ms);
  t.log(`closed after ${Math.min(...times)}–${Math.max(...times)} ms`);
  for (const c of clients) {
    t.true(c.ms >= SERVER_TIMEOUTS.headersTimeoutMs - 500, `not closed before headersTimeout (${c.ms} ms)`);
    t.true(c.ms <= bound, `closed within headersTimeout + check interval + slack (${c.ms} ms ≤ ${bound} ms)`);
    t.regex(c.received, /^HTTP\/1\.1 408 /, 'Node answers 408 Request Timeout as it closes');
  }
});

test('when a client sends its request line a byte at a time, then it is closed after headersTimeout', async (t) => {
  const bound = SERVER_TIMEOUTS.headersTimeoutMs + CHECK_INTERVAL_MS + SLACK_MS;
  t.timeout(bound + 10_000);
  // A valid request line that never ends: the URL grows by one character a second.
  const c = await slowClient({ first: 'GET /orders?pad=', drip: 'a', everyMs: 1000, giveUpMs: bound + 5000 });
  t.log(`closed after ${c.ms} ms`);
  t.true(c.ms >= SERVER_TIMEOUTS.headersTimeoutMs - 500, `not closed before headersTimeout (${c.ms} ms)`);
  t.true(c.ms <= bound, `closed within ${bound} ms (${c.ms} ms)`);
  t.regex(c.received, /^HTTP\/1\.1 408 /);
});

test('when a client trickles its body (slow POST), then it is closed after requestTimeout', async (t) => {
  const bound = SERVER_TIMEOUTS.requestTimeoutMs + CHECK_INTERVAL_MS + SLACK_MS;
  t.timeout(bound + 10_000);
  const c = await slowClient({
    first:
      'POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{',
    drip: ' ',
    everyMs: 1000,
    giveUpMs: bound + 5000,
  });
  t.log(`closed after ${c.ms} ms`);
  t.true(c.ms >= SERVER_TIMEOUTS.requestTimeoutMs - 500, `not closed before requestTimeout (${c.ms} ms)`);
  t.true(c.ms <= bound, `closed within requestTimeout + check interval + slack (${c.ms} ms ≤ ${bound} ms)`);
  t.regex(c.received, /^HTTP\/1\.1 408 /, 'Node answers 408 Request Timeout as it closes');
});

test('when a client stops sending after its oversized body was refused, then the socket is closed soon after the 413', async (t) => {
  const bound = SERVER_TIMEOUTS.keepAliveTimeoutMs + CHECK_INTERVAL_MS + SLACK_MS;
  t.timeout(bound + 10_000);
  const c = await slowClient({
    first: `POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${TEN_MB}\r\n\r\n${' '.repeat(1000)}`,
    giveUpMs: bound + 5000,
  });
  t.log(`closed after ${c.ms} ms`);
  t.regex(c.received, /^HTTP\/1\.1 413 /, 'the 413 is sent before the body arrives');
  t.true(c.ms <= bound, `closed within keepAliveTimeout + check interval + slack (${c.ms} ms ≤ ${bound} ms)`);
});

test('when a keep-alive connection sits idle, then it is closed after keepAliveTimeout', async (t) => {
  const bound = SERVER_TIMEOUTS.keepAliveTimeoutMs + CHECK_INTERVAL_MS + SLACK_MS;
  t.timeout(bound + 10_000);
  const c = await slowClient({
    first: 'GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n',
    giveUpMs: bound + 5000,
  });
  t.log(`closed after ${c.ms} ms`);
  t.regex(c.received, /^HTTP\/1\.1 200 /);
  t.true(c.ms >= SERVER_TIMEOUTS.keepAliveTimeoutMs - 500, `kept for keepAliveTimeout (${c.ms} ms)`);
  t.true(c.ms <= bound, `closed within keepAliveTimeout + slack (${c.ms} ms ≤ ${bound} ms)`);
});

// ---------------------------------------------------------------------------------------------
// Headers, page sizes, operator injection
// ---------------------------------------------------------------------------------------------

/** One request over a raw socket; resolves with the status line's code and what was sent back. */
function rawRequest(head: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(head));
    let text = '';
    socket.setTimeout(15_000, () => socket.destroy(new Error('no answer in 15 s')));
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
  });
}

test('when a header value is 20 kB, then Node answers 431 before the api sees it', async (t) => {
  const res = await rawRequest(
    `GET /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'a'.repeat(20 * 1024)}\r\nConnection: close\r\n\r\n`,
  );
  t.is(res.status, 431, res.text.slice(0, 200));
});

test('when an Idempotency-Key is 10 kB, then it answers 400 naming the header and stores nothing', async (t) => {
  const before = await orderCount();
  const res = await postOrder(api, validOrder(), { 'idempotency-key': 'k'.repeat(10 * 1024) });
  assertError(t, res, { status: 400, code: 'VALIDATION_ERROR', field: 'Idempotency-Key' });
  t.is(await orderCount(), before);
});

test('when an Idempotency-Key is 20 kB, then Node answers 431, never a 5xx', async (t) => {
  const res = await rawRequest(
    `POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nIdempotency-Key: ${'k'.repeat(20 * 1024)}\r\nConnection: close\r\n\r\n{}`,
  );
  t.is(res.status, 431, res.text.slice(0, 200));
});

test('when GET /orders carries operator syntax in its query, then it answers 400', async (t) => {
  for (const qs of [
    'status[$ne]=x',
    'status%5B%24ne%5D=x',
    'cursor[$gt]=',
    'customerId[$regex]=.*',
    'status[]=PENDING',
    'status=PENDING&status=FAILED',
    'customerId={"$ne":null}',
  ]) {
    const res = await call(api, 'GET', `/orders?${qs}`);
    assertError(t, res, { status: 400, code: 'VALIDATION_ERROR' }, qs);
  }
});

test('when a page size beyond 100 is asked for, then it answers 400; 1 and 100 are fine', async (t) => {
  for (const limit of ['101', '1000000', '0', '-1', '1.5', '1e3']) {
    assertError(
      t,
      await call(api, 'GET', `/orders?limit=${limit}`),
      { status: 400, code: 'VALIDATION_ERROR', field: 'limit' },
      `orders limit=${limit}`,
    );
    assertError(
      t,
      await call(api, 'GET', `/dlq?limit=${limit}`),
      { status: 400, code: 'VALIDATION_ERROR', field: 'limit' },
      `dlq limit=${limit}`,
    );
  }
  for (const limit of ['1', '100']) {
    t.is((await call(api, 'GET', `/orders?limit=${limit}`)).status, 200, `orders limit=${limit}`);
    t.is((await call(api, 'GET', `/dlq?limit=${limit}`)).status, 200, `dlq limit=${limit}`);
  }
});

test('when a cursor is 201 characters or not one the api made, then it answers 400', async (t) => {
  for (const cursor of ['A'.repeat(201), 'not-a-cursor', Buffer.from('{"$gt":""}').toString('base64url')]) {
    assertError(t, await call(api, 'GET', `/orders?cursor=${cursor}`), {
      status: 400,
      code: 'VALIDATION_ERROR',
      field: 'cursor',
    });
  }
});
