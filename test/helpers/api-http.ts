import type { ExecutionContext } from 'ava';
import type { TestApi } from './api.js';
import { waitFor } from './wait.js';

/** What the HTTP integration tests read of a response: status, headers and the parsed JSON (or text). */
export interface HttpResult<T = Record<string, unknown>> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
  readonly text: string;
  readonly ms: number;
}

export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly requestId: string;
    readonly details: ReadonlyArray<{ readonly field: string; readonly message: string }>;
  };
}

/** The order as the api returns it (docs/design.md, "Orders"). */
export interface OrderBody {
  readonly id: string;
  readonly status: string;
  readonly customerId: string;
  readonly items: ReadonlyArray<{ sku: string; quantity: number; unitPriceCents: number }>;
  readonly totalCents: number;
  readonly currency: string;
  readonly metadata?: Record<string, string>;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly history: ReadonlyArray<{ status: string; at: string; attempt?: number; reason?: string }>;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly processedAt: string | null;
  readonly failedAt: string | null;
}

export interface PageBody {
  readonly items: OrderBody[];
  readonly nextCursor: string | null;
}

/**
 * One HTTP request against the test api. `json` is serialised and sent as `application/json`;
 * `body` is sent as is (a string gets fetch's `text/plain`, a Uint8Array no content type at all).
 */
export async function call<T = Record<string, unknown>>(
  api: Pick<TestApi, 'baseUrl'>,
  method: string,
  path: string,
  options: { json?: unknown; body?: string | Uint8Array; headers?: Record<string, string> } = {},
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | Uint8Array | undefined = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] ??= 'application/json';
  }
  const started = performance.now();
  const response = await fetch(`${api.baseUrl}${path}`, { method, headers, body });
  const text = await response.text();
  const ms = performance.now() - started;
  let parsed: unknown = text;
  if ((response.headers.get('content-type') ?? '').includes('json') && text !== '') parsed = JSON.parse(text);
  return { status: response.status, headers: response.headers, body: parsed as T, text, ms };
}

/** A valid POST /orders body: 2 × 1250 + 3 × 199 = 3097 cents. */
export function validOrder(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    customerId: 'c-42',
    items: [
      { sku: 'SKU-1', quantity: 2, unitPriceCents: 1250 },
      { sku: 'SKU-2.b', quantity: 3, unitPriceCents: 199 },
    ],
    currency: 'EUR',
    ...overrides,
  };
}

export const VALID_ORDER_TOTAL_CENTS = 3097;

export function postOrder(
  api: Pick<TestApi, 'baseUrl'>,
  json: unknown = validOrder(),
  headers: Record<string, string> = {},
): Promise<HttpResult<OrderBody>> {
  return call<OrderBody>(api, 'POST', '/orders', { json, headers });
}

/**
 * Asserts the documented error shape: status, code, the request id of the response, and (when given)
 * a `details` entry naming `field`.
 */
export function assertError(
  t: ExecutionContext,
  result: HttpResult<unknown>,
  expected: { status: number; code: string; field?: string | RegExp },
  label = '',
): void {
  const where = label ? `${label}: ` : '';
  t.is(result.status, expected.status, `${where}status (body: ${result.text.slice(0, 300)})`);
  const body = result.body as Partial<ErrorBody>;
  t.is(body.error?.code, expected.code, `${where}error code`);
  t.is(typeof body.error?.message, 'string', `${where}error message`);
  t.is(body.error?.requestId, result.headers.get('x-request-id') ?? undefined, `${where}requestId = X-Request-Id`);
  t.true(Array.isArray(body.error?.details), `${where}details is a list`);
  if (expected.field !== undefined) {
    const fields = (body.error?.details ?? []).map((d) => d.field);
    const { field } = expected;
    const named = fields.some((f) => (typeof field === 'string' ? f === field : field.test(f)));
    t.true(named, `${where}details name ${String(field)}; got ${JSON.stringify(fields)}`);
  }
  t.false(/\bat .+:\d+:\d+/.test(result.text), `${where}no stack trace in the body`);
}

/** Everything the queue holds under the api's prefix: job counts by state and the Redis keys. */
export async function queueSnapshot(api: TestApi): Promise<{ jobs: number; keys: string[] }> {
  const counts = await api.container.queue.getJobCounts();
  const jobs = Object.values(counts).reduce((sum, n) => sum + n, 0);
  const keys = (await api.container.redis.keys(`${api.config.queuePrefix}:*`)).sort();
  return { jobs, keys };
}

/** Every job of the queue whose data names `orderId` (any state). */
export async function jobsOfOrder(api: TestApi, orderId: string) {
  const jobs = await api.container.queue.getJobs([
    'wait',
    'waiting',
    'active',
    'delayed',
    'prioritized',
    'completed',
    'failed',
    'waiting-children',
  ]);
  const unique = new Map(jobs.filter((j) => j?.data?.orderId === orderId).map((j) => [j.id, j]));
  return [...unique.values()];
}

/**
 * Resolves once the order's `enqueuedAt` is recorded (the api writes it behind the reply, batched);
 * rejects after `timeoutMs`.
 */
export async function enqueuedAtRecorded(api: TestApi, orderId: string, timeoutMs = 5000): Promise<Date> {
  return waitFor(
    `enqueuedAt of ${orderId} to be recorded`,
    async () => {
      const stored = await api.container.models.Order.findById(orderId).lean();
      return stored?.enqueuedAt instanceof Date ? stored.enqueuedAt : undefined;
    },
    timeoutMs,
  );
}
