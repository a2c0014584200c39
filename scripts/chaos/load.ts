import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

/** One HTTP exchange of the load. `status` 0: no answer (connection error or client timeout). */
export interface Sample {
  readonly kind: 'POST' | 'GET';
  readonly start: number;
  readonly ms: number;
  readonly status: number;
  readonly orderId?: string;
  readonly retryAfter: string | null;
  readonly replayed: boolean;
  readonly error?: string;
}

/** No request of the battery waits longer than this for an answer. */
export const CLIENT_TIMEOUT_MS = 15_000;

/** A valid order body; `n` varies the customer so orders can be told apart. */
export function orderBody(n: number): Record<string, unknown> {
  return {
    customerId: `chaos-${n}`,
    items: [
      { sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 },
      { sku: 'SKU-2', quantity: 1, unitPriceCents: 99 },
    ],
    currency: 'EUR',
  };
}

/** One request to the api (only ever 127.0.0.1), timed, never throwing. */
export async function send(
  url: string,
  options: { method?: 'GET' | 'POST'; body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Sample & { body: unknown }> {
  if (!/^http:\/\/127\.0\.0\.1:\d+\//.test(url)) throw new Error(`the battery only talks to 127.0.0.1, not ${url}`);
  const method = options.method ?? 'GET';
  const start = Date.now();
  const started = performance.now();
  try {
    const res = await fetch(url, {
      method,
      headers: {
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        'x-request-id': randomUUID(),
        ...options.headers,
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(options.timeoutMs ?? CLIENT_TIMEOUT_MS),
    });
    const text = await res.text();
    const ms = performance.now() - started;
    let body: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) {
      try {
        body = JSON.parse(text);
      } catch {
        // keep the text
      }
    }
    const id = (body as { id?: unknown } | null)?.id;
    return {
      kind: method,
      start,
      ms,
      status: res.status,
      orderId: typeof id === 'string' ? id : undefined,
      retryAfter: res.headers.get('retry-after'),
      replayed: res.headers.get('idempotent-replayed') === 'true',
      body,
    };
  } catch (err) {
    return {
      kind: method,
      start,
      ms: performance.now() - started,
      status: 0,
      retryAfter: null,
      replayed: false,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      body: undefined,
    };
  }
}

/** Everything the load sent and got, and the orders the api accepted (any 2xx). */
export class Recorder {
  readonly samples: Sample[] = [];
  readonly accepted = new Set<string>();

  add(sample: Sample): void {
    this.samples.push(sample);
    if (sample.kind === 'POST' && sample.status >= 200 && sample.status < 300 && sample.orderId) {
      this.accepted.add(sample.orderId);
    }
  }

  /** Samples of `kind` (both when omitted) that started in [from, to). */
  window(from: number, to: number, kind?: 'POST' | 'GET'): Sample[] {
    return this.samples.filter((s) => s.start >= from && s.start < to && (!kind || s.kind === kind));
  }

  /** A random accepted order id, for GET traffic. */
  someAccepted(): string | undefined {
    if (this.accepted.size === 0) return undefined;
    const index = Math.floor(Math.random() * this.accepted.size);
    let i = 0;
    for (const id of this.accepted) if (i++ === index) return id;
    return undefined;
  }
}

/** The p-th percentile (nearest rank) of `values`; 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Counts of samples by status, e.g. `{ 201: 90, 202: 10 }`. */
export function byStatus(samples: readonly Sample[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of samples) counts[String(s.status)] = (counts[String(s.status)] ?? 0) + 1;
  return counts;
}

/** `201×90 202×10` */
export function formatStatuses(samples: readonly Sample[]): string {
  const counts = byStatus(samples);
  const keys = Object.keys(counts).sort();
  return keys.length === 0 ? '-' : keys.map((k) => `${k === '0' ? 'no-answer' : k}×${counts[k]}`).join(' ');
}

export interface SteadyLoadOptions {
  readonly apiUrl: string;
  readonly recorder: Recorder;
  /** Requests started per second. */
  readonly ratePerSecond: number;
  /** The load stops after this long… */
  readonly durationMs: number;
  /** …or after this many requests, whichever comes first. */
  readonly maxRequests: number;
  /** Requests in flight at most; a tick that finds the limit reached sends nothing. */
  readonly maxInFlight?: number;
  /** Share of requests that are `GET /orders/:id` of an accepted order (0–1). */
  readonly getShare?: number;
  /** The body of POST number n. */
  readonly body?: (n: number) => unknown;
  readonly signal?: AbortSignal;
  /** Called after each answer (progress). */
  readonly onSample?: (sample: Sample) => void;
}

/**
 * Open-loop load at a fixed rate, bounded in time and count: requests keep their schedule while the
 * api is slow, so a slow answer shows as latency, not as a quieter load. Resolves when the last
 * request has been answered (or timed out).
 */
export async function steadyLoad(options: SteadyLoadOptions): Promise<{ sent: number; skipped: number }> {
  const interval = 1000 / options.ratePerSecond;
  const maxInFlight = options.maxInFlight ?? 200;
  const body = options.body ?? orderBody;
  const started = Date.now();
  const inFlight = new Set<Promise<void>>();
  let sent = 0;
  let skipped = 0;
  for (let n = 0; n < options.maxRequests; n += 1) {
    if (options.signal?.aborted) break;
    const due = started + n * interval;
    if (due - started >= options.durationMs) break;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    if (inFlight.size >= maxInFlight) {
      skipped += 1;
      continue;
    }
    const getId = options.getShare && Math.random() < options.getShare ? options.recorder.someAccepted() : undefined;
    const request = (
      getId
        ? send(`${options.apiUrl}/orders/${getId}`)
        : send(`${options.apiUrl}/orders`, { method: 'POST', body: body(n) })
    ).then((sample) => {
      options.recorder.add(sample);
      options.onSample?.(sample);
    });
    sent += 1;
    inFlight.add(request);
    void request.finally(() => inFlight.delete(request));
  }
  await Promise.all(inFlight);
  return { sent, skipped };
}

/** Runs `tasks` with at most `concurrency` at once (closed loop); resolves when all are done. */
export async function pool<T>(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<T>,
  signal?: AbortSignal,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const lane = async () => {
    while (next < count && !signal?.aborted) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return results;
}
