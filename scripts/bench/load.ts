import { Agent, request, type ClientRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { orderBody } from './seed.js';

/** What one autocannon run on POST /orders gave. */
export interface HammerResult {
  /** 2xx answers. */
  readonly ok: number;
  readonly non2xx: number;
  /** Connection errors and timeouts. */
  readonly errors: number;
  readonly seconds: number;
  /** 2xx answers per second. */
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly statusCodes: Record<string, number>;
}

/**
 * autocannon on `POST <baseUrl>/orders` with the bench's order body: `connections` connections for
 * `seconds` seconds, or until `amount` answers. With `idempotencyKeys`, request i carries the header
 * `Idempotency-Key: <idempotencyKeys>-<i>` (unique per run, the same again on a second run with the
 * same prefix: that is a replay).
 */
export async function hammer(options: {
  readonly baseUrl: string;
  readonly connections: number;
  readonly seconds?: number;
  readonly amount?: number;
  readonly idempotencyKeys?: string;
  readonly onResponse?: () => void;
}): Promise<HammerResult> {
  let sequence = 0;
  const headers = { 'content-type': 'application/json' };
  const opts: autocannon.Options = {
    url: `${options.baseUrl}/orders`,
    connections: options.connections,
    ...(options.amount ? { amount: options.amount } : { duration: options.seconds ?? 10 }),
    timeout: 10,
    requests: [
      {
        method: 'POST',
        path: '/orders',
        // Each request from the next bench customer (seed.ts), and with its own Idempotency-Key when asked.
        setupRequest: (req: autocannon.Request) => {
          const i = sequence;
          sequence += 1;
          return {
            ...req,
            body: orderBody(i),
            headers: options.idempotencyKeys
              ? { ...headers, 'idempotency-key': `${options.idempotencyKeys}-${i}` }
              : headers,
          };
        },
      },
    ],
  };
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(opts, (err: unknown, res) => (err ? reject(err as Error) : resolve(res)));
    if (options.onResponse) instance.on('response', options.onResponse);
  });
  const seconds = (new Date(result.finish).getTime() - new Date(result.start).getTime()) / 1000;
  const ok = result['2xx'];
  const statusCodes: Record<string, number> = {};
  for (const [code, stats] of Object.entries(result.statusCodeStats ?? {})) {
    statusCodes[code] = (stats as { count: number }).count;
  }
  return {
    ok,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    seconds,
    rps: ok / seconds,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    statusCodes,
  };
}

/** How many orders {@link postOrderOnce} has sent with the default body (the next bench customer's). */
let posted = 0;

/**
 * One POST /orders (or a GET of `url`) on `agent`: its status (0 for a connection error or timeout, with the error's
 * code) and latency in ms. `onRequest` sees the request before it is sent (its socket events).
 */
export function postOrderOnce(
  agent: Agent,
  url: URL,
  body: Buffer = orderBody(posted++),
  onRequest?: (req: ClientRequest) => void,
  method: 'POST' | 'GET' = 'POST',
): Promise<{ status: number; ms: number; code?: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (status: number, code?: string) => {
      if (settled) return;
      settled = true;
      resolve({ status, ms: performance.now() - started, ...(code && { code }) });
    };
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method,
        agent,
        headers: method === 'POST' ? { 'content-type': 'application/json', 'content-length': body.length } : {},
        timeout: 10_000,
      },
      (res) => {
        res.resume();
        res.once('end', () => done(res.statusCode ?? 0));
        res.once('error', (err: NodeJS.ErrnoException) => done(0, err.code ?? 'ERESPONSE'));
      },
    );
    onRequest?.(req);
    req.once('error', (err: NodeJS.ErrnoException) => done(0, err.code ?? err.message));
    req.once('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.end(method === 'POST' ? body : undefined);
  });
}

/** What a paced run gave. */
export interface PacedResult {
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  /** Client-side latencies of the 2xx answers, in ms. */
  readonly latenciesMs: number[];
  readonly seconds: number;
}

/**
 * An open-loop sender: `rate` requests per second, evenly spaced (not in bursts, as autocannon's
 * rate limit does), for `seconds`, on keep-alive connections. Waits for the answers still out
 * (at most 15 s) before it resolves.
 */
export async function paced(options: {
  readonly baseUrl: string;
  readonly rate: number;
  readonly seconds: number;
  readonly onTick?: (sent: number) => void;
}): Promise<PacedResult> {
  const url = new URL(`${options.baseUrl}/orders`);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round(options.rate * options.seconds);
  const latenciesMs: number[] = [];
  let ok = 0;
  let failed = 0;
  let sent = 0;
  const inflight = new Set<Promise<void>>();
  const send = () => {
    const p = postOrderOnce(agent, url).then(({ status, ms }) => {
      if (status >= 200 && status < 300) {
        ok += 1;
        latenciesMs.push(ms);
      } else failed += 1;
    });
    inflight.add(p);
    void p.then(() => inflight.delete(p));
  };
  const start = performance.now();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * options.rate) + 1);
    while (sent < due) {
      send();
      sent += 1;
    }
    options.onTick?.(sent);
    await sleep(Math.max(1, Math.floor(1000 / options.rate)));
  }
  await Promise.race([Promise.all(inflight), sleep(15_000)]);
  agent.destroy();
  return { sent, ok, failed, latenciesMs, seconds: (performance.now() - start) / 1000 };
}

/**
 * One connection, one request at a time (closed loop) for `seconds`: the latency of an idle server,
 * measured with sub-millisecond resolution (autocannon's histogram counts whole milliseconds).
 */
export async function oneAtATime(options: {
  readonly baseUrl: string;
  readonly seconds: number;
}): Promise<PacedResult> {
  const url = new URL(`${options.baseUrl}/orders`);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const latenciesMs: number[] = [];
  let failed = 0;
  const start = performance.now();
  while (performance.now() - start < options.seconds * 1000) {
    const { status, ms } = await postOrderOnce(agent, url);
    if (status >= 200 && status < 300) latenciesMs.push(ms);
    else failed += 1;
  }
  agent.destroy();
  const sent = latenciesMs.length + failed;
  return { sent, ok: latenciesMs.length, failed, latenciesMs, seconds: (performance.now() - start) / 1000 };
}
