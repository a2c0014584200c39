// Over 250 lines because the adapter is one unit: the provider API's three calls, the breaker around
// them, and the classification of every failure (which ones count against the breaker, which spend an
// attempt) belong together; splitting them would scatter one policy over files.
import CircuitBreaker from 'opossum';
import type { Logger } from 'pino';
import {
  CircuitOpenError,
  PaymentUnavailableError,
  type Charge,
  type ChargeRequest,
  type PaymentPort,
} from '../saga/ports.js';
import {
  BREAKER_STATE_VALUE,
  recordPaymentCall,
  type BreakerState,
  type PaymentCallOutcome,
  type PaymentMetrics,
  type PaymentOperation,
} from './payment-metrics.js';
import { PaymentRequestError } from './payment-request-error.js';

/** The breaker's settings (PAYMENT_BREAKER_* in the configuration). */
export interface BreakerSettings {
  /** How long the breaker stays open before it lets one trial call through (half-open). */
  readonly resetMs: number;
  /** The rolling window over which failures are counted. */
  readonly windowMs: number;
  /** The share of failed calls in the window, in percent, above which the breaker opens. */
  readonly errorThresholdPercent: number;
  /** The fewest calls in the window before the breaker may open at all. */
  readonly volumeThreshold: number;
}

/** The HTTP provider, plus what the worker's wiring needs: the breaker's state, and a way to stop its timers. */
export interface HttpPaymentProvider extends PaymentPort {
  breakerState(): BreakerState;
  close(): void;
}

// A retryAfterMs floor: the breaker's own timer may fire a little after its due time, and a job
// delayed by 0 would come straight back to a breaker still open.
const MIN_RETRY_AFTER_MS = 50;

/**
 * The payment provider API of docs/design.md over HTTP (Node's fetch), behind an opossum circuit breaker.
 *
 * - Every call has its own timeout (`timeoutMs`, an AbortSignal that also cancels the request). The
 *   breaker's own timer is off: it would only abandon the promise, leaving the request running.
 * - Timeouts, network errors, 5xx and 429 throw {@link PaymentUnavailableError} and count against the
 *   breaker. A decline is an answer (201, `status: "declined"`), and a 4xx is our request's fault
 *   ({@link PaymentRequestError}): neither counts.
 * - While the breaker is open no request is made: {@link CircuitOpenError} carries the time until it
 *   may half-open. Half-open, one trial call goes through; the calls that come meanwhile are refused
 *   for at most one call timeout.
 * - Idempotency keys are `<orderId>:charge` and `<orderId>:refund`: after a timeout the charge may
 *   have been made, and repeating it (or asking `findCharge`) is safe.
 * - A charge's `signal` (the worker letting go of the job) aborts the request and rethrows the signal's
 *   reason; that is no failure of the provider, so the breaker does not count it.
 */
export function createHttpPaymentProvider(deps: {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly breaker: BreakerSettings;
  readonly metrics: PaymentMetrics;
  readonly logger: Logger;
}): HttpPaymentProvider {
  const { timeoutMs, metrics } = deps;
  const log = deps.logger.child({ module: 'payment-provider' });
  const base = new URL(deps.baseUrl.endsWith('/') ? deps.baseUrl : `${deps.baseUrl}/`);
  const breaker = new CircuitBreaker((call: () => Promise<unknown>) => call(), {
    name: 'payment-provider',
    timeout: false,
    resetTimeout: deps.breaker.resetMs,
    rollingCountTimeout: deps.breaker.windowMs,
    errorThresholdPercentage: deps.breaker.errorThresholdPercent,
    volumeThreshold: deps.breaker.volumeThreshold,
    errorFilter: (err: unknown) => err instanceof PaymentRequestError || err instanceof CallerAborted,
  });
  let openedAt = 0;
  const enter = (state: BreakerState) => {
    metrics.breakerState.set(BREAKER_STATE_VALUE[state]);
    metrics.breakerTransitions.inc({ to: state });
  };
  breaker.on('open', () => {
    openedAt = Date.now();
    enter('open');
    log.warn({ resetMs: deps.breaker.resetMs }, 'payment provider circuit open: no calls until it half-opens');
  });
  breaker.on('halfOpen', () => {
    enter('half_open');
    log.info('payment provider circuit half-open: one trial call');
  });
  breaker.on('close', () => {
    enter('closed');
    log.info('payment provider circuit closed');
  });
  metrics.breakerState.set(BREAKER_STATE_VALUE.closed);

  const retryAfterMs = () =>
    breaker.opened ? Math.max(openedAt + deps.breaker.resetMs - Date.now(), MIN_RETRY_AFTER_MS) : timeoutMs;

  /** One call through the breaker; `send` makes the request and reads the answer. */
  async function guarded<T>(
    operation: PaymentOperation,
    send: (signal: AbortSignal) => Promise<{ value: T; outcome: PaymentCallOutcome }>,
    callerSignal?: AbortSignal,
  ): Promise<T> {
    callerSignal?.throwIfAborted();
    let started = 0;
    const call = async () => {
      started = performance.now();
      const timeout = AbortSignal.timeout(timeoutMs);
      try {
        return await send(callerSignal ? AbortSignal.any([timeout, callerSignal]) : timeout);
      } catch (err) {
        // The worker let go (shutdown), not the provider: not a failure of the provider.
        if (callerSignal?.aborted) throw new CallerAborted(callerSignal.reason);
        throw err;
      }
    };
    try {
      const { value, outcome } = (await breaker.fire(call)) as { value: T; outcome: PaymentCallOutcome };
      recordPaymentCall(metrics, operation, outcome, (performance.now() - started) / 1000);
      return value;
    } catch (err) {
      if ((err as { code?: unknown }).code === 'EOPENBREAKER' && CircuitBreaker.isOurError(err as Error)) {
        recordPaymentCall(metrics, operation, 'circuit_open', undefined);
        throw new CircuitOpenError(retryAfterMs());
      }
      if (err instanceof CallerAborted) throw err.reason;
      const failure = classify(err, timeoutMs);
      recordPaymentCall(metrics, operation, failure.outcome, (performance.now() - started) / 1000);
      // The call that trips the breaker, or a half-open trial that fails, is part of the outage the
      // breaker now stands for: the job waits for the breaker rather than spending an attempt, so an
      // outage longer than the retry budget dead-letters nothing.
      if (failure.error instanceof PaymentUnavailableError && breaker.opened) {
        throw new CircuitOpenError(retryAfterMs());
      }
      throw failure.error;
    }
  }

  async function request(
    method: 'GET' | 'POST',
    path: string,
    signal: AbortSignal,
    options: { idempotencyKey?: string; json?: unknown } = {},
  ): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    if (options.json !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(new URL(path, base), {
      method,
      headers,
      body: options.json === undefined ? undefined : JSON.stringify(options.json),
      signal,
    });
    const text = await res.text();
    if (res.status >= 500 || res.status === 429) {
      throw new PaymentUnavailableError(`payment provider answered ${res.status} to ${method} /${path}`);
    }
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new BadResponse(`payment provider answered ${res.status} with a body that is not JSON`);
    }
    if (res.status >= 400) {
      const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new PaymentRequestError(
        `payment provider refused ${method} /${path}: ${res.status} ${error?.message ?? ''}`.trim(),
        res.status,
        error?.code,
      );
    }
    return { status: res.status, body };
  }

  return {
    breakerState: () => (breaker.opened ? 'open' : breaker.halfOpen ? 'half_open' : 'closed'),
    close: () => breaker.shutdown(),

    charge(req: ChargeRequest): Promise<Charge> {
      return guarded(
        'charge',
        async (signal) => {
          const { body } = await request('POST', 'charges', signal, {
            idempotencyKey: req.idempotencyKey ?? `${req.orderId}:charge`,
            json: {
              orderId: req.orderId,
              amountCents: req.amountCents,
              currency: req.currency,
              ...(req.testCard === undefined ? {} : { testCard: req.testCard }),
            },
          });
          const charge = toCharge(body);
          return { value: charge, outcome: charge.status === 'declined' ? 'declined' : 'ok' };
        },
        req.signal,
      );
    },

    findCharge(orderId: string, idempotencyKey?: string): Promise<Charge | null> {
      const key = idempotencyKey ?? `${orderId}:charge`;
      return guarded('find_charge', async (signal) => {
        const { body } = await request('GET', `charges?orderId=${encodeURIComponent(orderId)}`, signal);
        const items = (body as { items?: unknown } | undefined)?.items;
        if (!Array.isArray(items)) throw new BadResponse('payment provider listed charges without items');
        // The charge made under this key: an order charged again after a refund has several charges,
        // one per key (see chargeKey in the saga's ports).
        const found =
          items
            .filter((c: unknown) => (c as { idempotencyKey?: unknown } | null)?.idempotencyKey === key)
            .map(toCharge)
            .find((c) => c.orderId === orderId) ?? null;
        return { value: found, outcome: 'ok' };
      });
    },

    refund(req): Promise<{ readonly id: string }> {
      return guarded('refund', async (signal) => {
        const { body } = await request('POST', `charges/${encodeURIComponent(req.chargeId)}/refunds`, signal, {
          idempotencyKey: `${req.orderId}:refund`,
          json: { amountCents: req.amountCents },
        });
        const id = (body as { id?: unknown } | undefined)?.id;
        if (typeof id !== 'string') throw new BadResponse('payment provider answered a refund without an id');
        return { value: { id }, outcome: 'ok' };
      });
    },
  };
}

/** A 2xx (or 4xx) whose body we cannot read: the outcome is unknown, so it is treated as unavailable. */
class BadResponse extends Error {}

/** The caller's signal aborted the call; `reason` is what the caller gets back. */
class CallerAborted extends Error {
  constructor(readonly reason: unknown) {
    super('payment call aborted by the caller');
  }
}

function toCharge(raw: unknown): Charge {
  const c = raw as Partial<Record<keyof Charge, unknown>> | undefined;
  if (
    !c ||
    typeof c.id !== 'string' ||
    typeof c.orderId !== 'string' ||
    (c.status !== 'succeeded' && c.status !== 'declined') ||
    typeof c.amountCents !== 'number'
  ) {
    throw new BadResponse('payment provider answered a charge of an unknown shape');
  }
  return Object.freeze({ id: c.id, orderId: c.orderId, status: c.status, amountCents: c.amountCents });
}

function classify(err: unknown, timeoutMs: number): { error: Error; outcome: PaymentCallOutcome } {
  if (err instanceof PaymentRequestError) return { error: err, outcome: 'client_error' };
  if (err instanceof PaymentUnavailableError) return { error: err, outcome: 'server_error' };
  if (err instanceof BadResponse) {
    return { error: new PaymentUnavailableError(err.message, { cause: err }), outcome: 'bad_response' };
  }
  const name = (err as { name?: unknown }).name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return {
      error: new PaymentUnavailableError(`payment provider did not answer within ${timeoutMs} ms`, { cause: err }),
      outcome: 'timeout',
    };
  }
  const cause = (err as { cause?: { code?: string } }).cause;
  return {
    error: new PaymentUnavailableError(
      `payment provider unreachable: ${cause?.code ?? (err instanceof Error ? err.message : String(err))}`,
      { cause: err },
    ),
    outcome: 'network',
  };
}
