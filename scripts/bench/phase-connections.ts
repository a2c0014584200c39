import { readFile } from 'node:fs/promises';
import { Agent, type ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { postOrderOnce } from './load.js';
import { startApi, stopAndSave, type BenchContext, type BenchSizes, type Started } from './rig.js';
import { percentile } from './stats.js';

export interface ConnectionsFigures {
  readonly connections: number;
  readonly seconds: number;
  /** Each connection sends one order every this many seconds (connections ÷ rate). */
  readonly intervalSeconds: number;
  readonly offeredRate: number;
  /** Where the rate came from. */
  readonly rateNote: string;
  readonly sent: number;
  readonly ok: number;
  readonly non2xx: number;
  /** Connection errors other than refused or reset (timeouts included). */
  readonly errors: number;
  readonly refused: number;
  readonly resets: number;
  /** Requests that went out on a new socket because the connection's first one had closed. */
  readonly reconnects: number;
  /** Connections opened (one GET /health/live each, spread over the ramp) before the orders, and those that failed. */
  readonly opened: number;
  readonly openFailures: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly apiPeakRssBytes: number;
  readonly apiCpuUsPerOrder: number;
}

/** Expected seconds of the phase (its weight on the progress bar). */
export const connectionsWeight = (s: BenchSizes) => s.manyConnectionsSeconds + RAMP_SECONDS + 3;

/** Every connection is opened (GET /health/live, no order) within this, before the orders start. */
const RAMP_SECONDS = 5;

/** The soft limit on open files of this process (inherited by the api it starts), or undefined when unknown. */
async function openFilesLimit(): Promise<number | undefined> {
  const limits = await readFile('/proc/self/limits', 'utf8').catch(() => '');
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  if (!match) return undefined;
  return match[1] === 'unlimited' ? Infinity : Number(match[1]);
}

/**
 * Many concurrent keep-alive connections (issue 17: the reference system's "5,000+ concurrent
 * users"): each connection is its own client (an Agent of one socket) that sends an order every
 * `connections ÷ rate` seconds on a fixed schedule, first sends spread over the first interval, for
 * `manyConnectionsSeconds`, against the real api alone (no worker: the orders wait in the queue).
 * The api's keep-alive timeout (HTTP_KEEPALIVE_TIMEOUT_MS) is set above that interval, as behind a
 * load balancer, so every connection stays open. Counts every answer and every socket event:
 * refused, reset, other errors, reconnects (a connection whose socket closed under it).
 */
export async function measureConnections(
  ctx: BenchContext,
  rate: { readonly perSecond: number; readonly note: string },
): Promise<ConnectionsFigures> {
  const { sizes } = ctx;
  const n = sizes.manyConnections;
  const INTERVAL_SECONDS = n / rate.perSecond;
  const limit = await openFilesLimit();
  // The bench holds one socket per connection and so does the api, each beside its other files.
  if (limit !== undefined && limit < n + 1024) {
    throw new Error(
      `the open-files limit is ${limit}, under the ${n + 1024} that ${n} connections need in this process and in the api: raise it (ulimit -n ${n + 4096}) before npm run bench; Node cannot raise its own limit`,
    );
  }
  const phase = ctx.progress.phase(
    `connections: ${n} keep-alive connections, one order every ${INTERVAL_SECONDS.toFixed(1)} s each (${Math.round(rate.perSecond)}/s), ${sizes.manyConnectionsSeconds} s, api alone`,
    connectionsWeight(sizes),
  );
  const db = ctx.cleanup.claim(ctx.configured, 'connections');
  let api: Started | undefined;
  const agents: Agent[] = [];
  try {
    api = await startApi(ctx, {
      name: 'connections-api',
      backends: ctx.configured,
      db,
      env: { HTTP_KEEPALIVE_TIMEOUT_MS: String(Math.ceil(INTERVAL_SECONDS * 1000 + 10_000)) },
    });
    const url = new URL(`${api.url}/orders`);
    const latencies: number[] = [];
    let sent = 0;
    let ok = 0;
    let non2xx = 0;
    let errors = 0;
    let refused = 0;
    let resets = 0;
    let reconnects = 0;
    // Open every connection first (a liveness GET each, spread over the ramp), so all are open at
    // once however long the interval between one connection's orders is.
    const live = new URL(`${api.url}/health/live`);
    let opened = 0;
    let openFailures = 0;
    const rampStart = performance.now();
    const openOne = async (agent: Agent, i: number, onRequest: (req: ClientRequest) => void) => {
      const wait = rampStart + (i / n) * RAMP_SECONDS * 1000 - performance.now();
      if (wait > 0) await sleep(wait);
      const answer = await postOrderOnce(agent, live, undefined, onRequest, 'GET');
      if (answer.status === 200) opened += 1;
      else openFailures += 1;
    };
    const cpuBefore = await api.proc.cpuMs();
    let start = Infinity;
    let endAt = Infinity;
    let startOrders = () => undefined as void;
    const allOpen = new Promise<void>((resolve) => {
      startOrders = resolve;
    });
    let rampsLeft = n;
    const user = async (i: number) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      let first: Socket | undefined;
      const onRequest = (req: ClientRequest) =>
        req.once('socket', (socket: Socket) => {
          if (!first) first = socket;
          else if (socket !== first) {
            reconnects += 1;
            first = socket;
          }
        });
      await openOne(agent, i, onRequest);
      rampsLeft -= 1;
      if (rampsLeft === 0) {
        start = performance.now();
        endAt = start + sizes.manyConnectionsSeconds * 1000;
        startOrders();
      }
      await allOpen;
      for (let k = 0; ; k += 1) {
        const due = start + ((i / n) * INTERVAL_SECONDS + k * INTERVAL_SECONDS) * 1000;
        if (due >= endAt) return;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        sent += 1;
        const answer = await postOrderOnce(agent, url, undefined, onRequest);
        if (answer.status >= 200 && answer.status < 300) {
          ok += 1;
          latencies.push(answer.ms);
        } else if (answer.status > 0) non2xx += 1;
        else if (answer.code === 'ECONNREFUSED') refused += 1;
        else if (answer.code === 'ECONNRESET' || answer.code === 'EPIPE') resets += 1;
        else errors += 1;
      }
    };
    const ticker = setInterval(
      () =>
        rampsLeft > 0
          ? phase.update(0, `opening connections: ${opened} open`)
          : phase.update((performance.now() - start) / (endAt - start), `${sent} sent, ${ok} accepted`),
      500,
    );
    try {
      await Promise.all(Array.from({ length: n }, (_, i) => user(i)));
    } finally {
      clearInterval(ticker);
    }
    const cpu = (await api.proc.cpuMs()) - cpuBefore;
    const seconds = (performance.now() - start) / 1000;
    phase.done();
    return {
      connections: n,
      seconds,
      intervalSeconds: INTERVAL_SECONDS,
      offeredRate: rate.perSecond,
      rateNote: rate.note,
      sent,
      ok,
      non2xx,
      errors,
      refused,
      resets,
      reconnects,
      opened,
      openFailures,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: percentile(latencies, 100),
      apiPeakRssBytes: await api.proc.peakRss(),
      apiCpuUsPerOrder: ok > 0 ? (cpu * 1000) / ok : NaN,
    };
  } finally {
    for (const agent of agents) agent.destroy();
    await stopAndSave(ctx, api);
    await ctx.cleanup.release(db);
  }
}
