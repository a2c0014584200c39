import { freePort } from '../lib/embedded-services.js';
import type { FleetProcess } from './fleet.js';
import type { Rig } from './rig.js';
import type { OrderRow } from './verify.js';

/** One charge as the sandbox lists it (`GET /_charges`), with its refunds. */
export interface ListedCharge {
  readonly id: string;
  readonly orderId: string;
  readonly status: 'succeeded' | 'declined';
  readonly refunds: ReadonlyArray<{ readonly id: string }>;
}

/** The sandbox's settings patch (`PUT /_settings`). */
export interface SandboxPatch {
  readonly latencyMs?: number | readonly [number, number];
  readonly failureRate?: number;
  readonly outage?: 'none' | '503' | 'reset';
  readonly slowMs?: number;
}

/** The payment sandbox as a process of the fleet (`node dist/scripts/payment-sandbox.js`), driven over HTTP. */
export class SandboxProcess {
  private constructor(
    readonly url: string,
    readonly process: FleetProcess,
  ) {}

  /**
   * The port and the variables for a scenario whose workers charge through the sandbox: chosen
   * before the rig starts, so the workers know the URL; the sandbox itself starts in the body.
   */
  static async reserve(): Promise<{ port: number; env: Record<string, string> }> {
    const port = await freePort();
    return { port, env: { PAYMENT_PROVIDER_URL: `http://127.0.0.1:${port}` } };
  }

  static async start(rig: Rig, port: number, settings: SandboxPatch = {}): Promise<SandboxProcess> {
    const proc = await rig.fleet.start('payment-sandbox', { env: { PAYMENT_SANDBOX_PORT: String(port) } });
    const sandbox = new SandboxProcess(`http://127.0.0.1:${port}`, proc);
    await sandbox.configure(settings);
    return sandbox;
  }

  private async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await fetch(`${this.url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as T;
    if (!res.ok) throw new Error(`payment sandbox answered ${res.status} to ${path}: ${JSON.stringify(body)}`);
    return body;
  }

  configure(patch: SandboxPatch): Promise<unknown> {
    return this.json('/_settings', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(patch),
    });
  }

  stats(): Promise<{ calls: number; charges: number; refunds: number; failed: number; unavailable: number }> {
    return this.json('/_stats');
  }

  async charges(): Promise<ListedCharge[]> {
    return (await this.json<{ items: ListedCharge[] }>('/_charges')).items;
  }
}

/** What the sandbox holds against the orders' final states. */
export interface ChargeAudit {
  /** Charges made (declined ones included) and refunds made, for the orders audited. */
  readonly charges: number;
  readonly refunds: number;
  /** Orders with more than one succeeded charge not refunded: the customer paid twice. */
  readonly doubleCharged: string[];
  /** PROCESSED orders without exactly one standing charge (unpaid, or paid twice). */
  readonly processedNotOnce: string[];
  /** Orders not PROCESSED that keep a standing charge (paid for nothing). */
  readonly chargedNotServed: string[];
  /** Standing charges by order, for the evidence. */
  readonly standing: ReadonlyMap<string, number>;
}

/** Audits the sandbox's charges of `ids` against their orders (a standing charge: succeeded, no refund). */
export function auditCharges(
  charges: readonly ListedCharge[],
  orders: ReadonlyMap<string, OrderRow>,
  ids: Iterable<string>,
): ChargeAudit {
  const wanted = new Set(ids);
  const standing = new Map<string, number>();
  let made = 0;
  let refunds = 0;
  for (const c of charges) {
    if (!wanted.has(c.orderId)) continue;
    made += 1;
    refunds += c.refunds.length;
    if (c.status === 'succeeded' && c.refunds.length === 0) standing.set(c.orderId, (standing.get(c.orderId) ?? 0) + 1);
  }
  const doubleCharged: string[] = [];
  const processedNotOnce: string[] = [];
  const chargedNotServed: string[] = [];
  for (const id of wanted) {
    const n = standing.get(id) ?? 0;
    const status = orders.get(id)?.status;
    if (n > 1) doubleCharged.push(id);
    if (status === 'PROCESSED' && n !== 1) processedNotOnce.push(id);
    if (status !== 'PROCESSED' && n > 0) chargedNotServed.push(id);
  }
  return { charges: made, refunds, doubleCharged, processedNotOnce, chargedNotServed, standing };
}

/** A worker with a metrics server of its own (the battery scrapes `payment_*` from it). */
export async function startMeteredWorker(
  rig: Rig,
  options: { wait?: boolean } = {},
): Promise<{ worker: FleetProcess; metricsUrl: string }> {
  const port = await freePort();
  const worker = await rig.fleet.startWorker({ env: { WORKER_METRICS_PORT: String(port) }, wait: options.wait });
  return { worker, metricsUrl: `http://127.0.0.1:${port}/metrics` };
}

/** The Prometheus text of a worker, or undefined when it does not answer (killed, starting). */
export async function scrape(metricsUrl: string): Promise<string | undefined> {
  try {
    const res = await fetch(metricsUrl, { signal: AbortSignal.timeout(2000) });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

/** Sum of the samples of `name` whose labels include every `labels` pair. */
export function metricSum(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const match = /^[^{\s]+(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labelText = match[1] ?? '';
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) sum += Number(match[2]);
  }
  return sum;
}

/** `GET /inventory/:sku` through the api. */
export async function stockLevel(
  apiUrl: string,
  sku: string,
): Promise<{ available: number; reserved: number; sold: number }> {
  const res = await fetch(`${apiUrl}/inventory/${encodeURIComponent(sku)}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { available: number; reserved: number; sold: number };
  if (res.status !== 200) throw new Error(`GET /inventory/${sku}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** `PUT /inventory/:sku {available}` through the api. */
export async function setStock(apiUrl: string, sku: string, available: number): Promise<void> {
  const res = await fetch(`${apiUrl}/inventory/${encodeURIComponent(sku)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ available }),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 200) throw new Error(`PUT /inventory/${sku}: ${res.status} ${await res.text()}`);
}

/** The first few ids of a list, for a check's actual value. */
export function someIds(ids: readonly string[], max = 5): string {
  return ids.length === 0 ? '0' : `${ids.length}: ${ids.slice(0, max).join(', ')}${ids.length > max ? ' …' : ''}`;
}
