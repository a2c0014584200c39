import type { OrderView } from '#common';

/**
 * GET /dlq's view of a failed job, as the api sends it over HTTP (the CLI's only contract with the
 * api: it reads the JSON, never the api's modules).
 */
export interface DeadJob {
  readonly id: string;
  readonly state: string;
  readonly failedReason: string | null;
  readonly attemptsMade: number;
  readonly finishedOn: number | null;
  /** The top frame of the last stack trace, e.g. `at attempt (file.js:10:5)`; null when none. */
  readonly lastFrame: string | null;
}

export interface DlqPage {
  readonly items: readonly { readonly order: OrderView; readonly job: DeadJob | null }[];
  readonly nextCursor: string | null;
}

/** GET /dlq?queue=notifications's view of an undeliverable webhook (job id = `webhook-id`). */
export interface DeadNotification {
  readonly id: string;
  readonly type: string | null;
  readonly orderId: string | null;
  readonly failedReason: string | null;
  readonly attemptsMade: number;
  readonly finishedOn: number | null;
}

export interface DeadNotificationPage {
  readonly items: readonly DeadNotification[];
  readonly nextCursor: null;
  readonly total: number;
}

export interface BulkResult {
  readonly reprocessed: number;
  readonly skipped: number;
  readonly notFound: number;
}

/** A filtered replay's request body (POST /dlq/reprocess): the filters, the batch bound, who and why. */
export interface ReplayRequest {
  readonly queue: 'orders' | 'notifications';
  readonly customerId?: string;
  readonly failedReason?: string;
  readonly failedFrom?: string;
  readonly failedTo?: string;
  readonly dryRun?: boolean;
  readonly limit?: number;
  readonly operator?: string;
  readonly reason?: string;
}

/** One dead letter a dry run would take. */
export interface ReplayCandidate {
  readonly id: string;
  readonly orderId: string | null;
  readonly customerId: string | null;
  readonly failedAt: string | null;
  readonly failedReason: string | null;
}

export type ReplayResult =
  | { readonly dryRun: true; readonly matched: number; readonly sample: readonly ReplayCandidate[] }
  | (BulkResult & { readonly dryRun: false; readonly remaining: number });

/** A failure the operator can act on: what went wrong, and what to do next. */
export class DlqCliError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'DlqCliError';
  }
}

export type DlqClient = ReturnType<typeof createDlqClient>;

interface ErrorBody {
  readonly error?: {
    readonly code?: string;
    readonly message?: string;
    readonly requestId?: string;
    readonly details?: readonly { readonly field?: string; readonly message?: string }[];
  };
}

/** The object without its undefined fields (the api refuses none, but a body stays minimal). */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const NOT_REACHABLE = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET|EHOSTUNREACH|ENETUNREACH|UND_ERR_SOCKET/;

/**
 * The api's dead-letter routes over HTTP, so the script goes through the same rules (authentication,
 * validation, state checks) as any other caller. Every failure becomes a {@link DlqCliError} with a hint.
 */
export function createDlqClient(options: {
  readonly baseUrl: string;
  readonly apiKey?: string;
  readonly timeoutMs?: number;
}) {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 60_000;

  async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const what = cause?.code ?? (err as Error).name;
      if ((err as Error).name === 'TimeoutError') {
        throw new DlqCliError(
          `the api at ${baseUrl} did not answer ${method} ${path} within ${timeoutMs / 1000} s`,
          'check that the api is healthy (GET /health/ready), then run the command again',
        );
      }
      if (NOT_REACHABLE.test(`${what} ${cause?.message ?? ''}`)) {
        throw new DlqCliError(`cannot reach the api at ${baseUrl} (${what})`, 'start it with npm start or set API_URL');
      }
      throw new DlqCliError(
        `request to ${baseUrl}${path} failed: ${cause?.message ?? (err as Error).message}`,
        'start it with npm start or set API_URL',
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new DlqCliError(
        `${baseUrl} answered ${method} ${path} with ${response.status} and no JSON: is API_URL the orders api?`,
        'set API_URL to the api (default http://127.0.0.1:3000)',
      );
    }
    if (response.ok) return parsed as T;
    throw errorFor(response, (parsed ?? {}) as ErrorBody, `${method} ${path}`);
  }

  function errorFor(response: Response, body: ErrorBody, call: string): DlqCliError {
    const error = body.error ?? {};
    const code = error.code ?? 'ERROR';
    const said = `${response.status} ${code}${error.message ? `: ${error.message}` : ''}`;
    switch (response.status) {
      case 401:
        return new DlqCliError(
          `the api refused ${call} (${said})`,
          'set API_KEY to an admin key (a key listed in API_KEYS with :admin)',
        );
      case 404:
        return code === 'NOT_FOUND' && /^no route/.test(error.message ?? '')
          ? new DlqCliError(`the api has no ${call} (${said})`, 'set API_URL to the orders api')
          : new DlqCliError(`${said}`, 'list the dead orders with: npm run dlq -- list');
      case 409:
        return new DlqCliError(`${said}`, 'only FAILED orders can be reprocessed; see the order with GET /orders/<id>');
      case 400: {
        const details = (error.details ?? []).map((d) => `${d.field}: ${d.message}`).join('; ');
        return new DlqCliError(`${said}${details ? ` (${details})` : ''}`, 'fix the arguments and run again');
      }
      case 429:
        return new DlqCliError(
          `${said}`,
          `wait ${response.headers.get('retry-after') ?? 'a minute'} s and run again (or use a smaller --batch)`,
        );
      case 503:
        return new DlqCliError(`${said}`, 'the api cannot reach MongoDB or Redis; check GET /health/ready and retry');
      default:
        return new DlqCliError(
          `${call} failed (${said}${error.requestId ? `, request id ${error.requestId}` : ''})`,
          'see the api log for this request id, then run the command again',
        );
    }
  }

  return {
    baseUrl,
    list(limit: number, cursor?: string | null): Promise<DlqPage> {
      const query = new URLSearchParams({ limit: String(limit) });
      if (cursor) query.set('cursor', cursor);
      return request<DlqPage>('GET', `/dlq?${query}`);
    },
    reprocess(orderId: string, reason?: string, operator?: string): Promise<OrderView> {
      const body = definedOnly({ reason, operator });
      return request<OrderView>(
        'POST',
        `/dlq/${encodeURIComponent(orderId)}/reprocess`,
        Object.keys(body).length === 0 ? undefined : body,
      );
    },
    reprocessMany(orderIds: readonly string[], reason?: string, operator?: string): Promise<BulkResult> {
      return request<BulkResult>('POST', '/dlq/reprocess', { orderIds, ...definedOnly({ reason, operator }) });
    },
    /** One filtered request: a dry run's count and sample, or one bounded batch replayed. */
    replay(body: ReplayRequest): Promise<ReplayResult> {
      return request<ReplayResult>('POST', '/dlq/reprocess', definedOnly(body));
    },
    listNotifications(limit: number): Promise<DeadNotificationPage> {
      return request<DeadNotificationPage>('GET', `/dlq?queue=notifications&limit=${limit}`);
    },
    reprocessNotification(id: string, operator?: string): Promise<DeadNotification> {
      const body = definedOnly({ operator });
      return request<DeadNotification>(
        'POST',
        `/dlq/${encodeURIComponent(id)}/reprocess?queue=notifications`,
        Object.keys(body).length === 0 ? undefined : body,
      );
    },
    reprocessAllNotifications(operator?: string): Promise<BulkResult> {
      return request<BulkResult>('POST', '/dlq/reprocess', { queue: 'notifications', ...definedOnly({ operator }) });
    },
  };
}
