import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSandboxApp, type SandboxStats } from '../../scripts/lib/payment-sandbox/app.js';
import { DEFAULT_SANDBOX_SETTINGS, type SandboxSettings } from '../../scripts/lib/payment-sandbox/settings.js';

/** A payment sandbox in this process on port 0, driven over HTTP like the real one. */
export interface TestSandbox {
  readonly url: string;
  /** `PUT /_settings` with a partial update; throws unless it is accepted. */
  configure(patch: Partial<Record<keyof SandboxSettings, unknown>>): Promise<SandboxSettings>;
  /** `GET /_stats`. */
  stats(): Promise<SandboxStats>;
  /** `GET /_charges` (every charge, or one order's), each with its refunds; answers during an outage too. */
  charges(orderId?: string): Promise<SandboxListedCharge[]>;
  close(): Promise<void>;
}

export interface SandboxListedCharge {
  readonly id: string;
  readonly orderId: string;
  readonly status: 'succeeded' | 'declined';
  readonly amountCents: number;
  readonly currency: string;
  readonly refunds: ReadonlyArray<{ readonly id: string; readonly chargeId: string; readonly amountCents: number }>;
}

export async function startTestSandbox(
  settings: Partial<SandboxSettings> = {},
  options: { random?: () => number } = {},
): Promise<TestSandbox> {
  const stopping = new AbortController();
  const app = buildSandboxApp({ ...DEFAULT_SANDBOX_SETTINGS, ...settings }, { signal: stopping.signal, ...options });
  const server = createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const json = async <T>(res: Response): Promise<T> => {
    const body = (await res.json()) as T;
    if (!res.ok) throw new Error(`sandbox answered ${res.status}: ${JSON.stringify(body)}`);
    return body;
  };
  return {
    url,
    configure: async (patch) =>
      json<SandboxSettings>(
        await fetch(`${url}/_settings`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(patch),
        }),
      ),
    stats: async () => json<SandboxStats>(await fetch(`${url}/_stats`)),
    charges: async (orderId) => {
      const query = orderId === undefined ? '' : `?orderId=${encodeURIComponent(orderId)}`;
      return (await json<{ items: SandboxListedCharge[] }>(await fetch(`${url}/_charges${query}`))).items;
    },
    close: async () => {
      stopping.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
