import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The provider calls the payment port makes, as the `operation` label names them. */
export type PaymentOperation = 'charge' | 'refund' | 'find_charge';

/**
 * How a provider call ended, as the `outcome` label names it: `ok`, `declined` (a charge the provider
 * refused: an answer, not an error), `timeout`, `network` (no answer: refused, reset, DNS),
 * `server_error` (5xx or 429), `client_error` (another 4xx: our request was wrong), `bad_response`
 * (an answer we cannot read), `circuit_open` (no call made), `simulated_failure` (the in-process provider).
 */
export type PaymentCallOutcome =
  | 'ok'
  | 'declined'
  | 'timeout'
  | 'network'
  | 'server_error'
  | 'client_error'
  | 'bad_response'
  | 'circuit_open'
  | 'simulated_failure';

/** The breaker's states as `payment_breaker_state` reports them. */
export const BREAKER_STATE_VALUE = { closed: 0, half_open: 1, open: 2 } as const;
export type BreakerState = keyof typeof BREAKER_STATE_VALUE;

export interface PaymentMetrics {
  /** 0 closed, 1 half-open (one trial call allowed), 2 open (no calls made). */
  readonly breakerState: Gauge;
  readonly breakerTransitions: Counter<'to'>;
  /** Calls that reached (or tried to reach) the provider; `circuit_open` refusals are not observed here. */
  readonly callDuration: Histogram<'operation' | 'outcome'>;
  /** Calls that did not end `ok` or `declined`, `circuit_open` included. */
  readonly callErrors: Counter<'operation' | 'outcome'>;
}

/**
 * The payment provider's series, on the worker's registry: breaker state and transitions, call
 * latency and errors. The simulated provider reports them too (its breaker is always closed), so
 * dashboards read the same names whichever provider runs.
 */
export function createPaymentMetrics(registry: Registry): PaymentMetrics {
  const breakerState = new Gauge({
    name: 'payment_breaker_state',
    help: 'Payment provider circuit breaker: 0 closed, 1 half-open (one trial call), 2 open (no calls made)',
    registers: [registry],
  });
  breakerState.set(BREAKER_STATE_VALUE.closed);
  return {
    breakerState,
    breakerTransitions: new Counter({
      name: 'payment_breaker_transitions_total',
      help: 'Payment provider circuit breaker transitions, by the state entered: open, half_open, closed',
      labelNames: ['to'] as const,
      registers: [registry],
    }),
    callDuration: new Histogram({
      name: 'payment_provider_call_duration_seconds',
      help: 'Duration of payment provider calls in seconds, by operation (charge, refund, find_charge) and outcome',
      labelNames: ['operation', 'outcome'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    callErrors: new Counter({
      name: 'payment_provider_errors_total',
      help: 'Payment provider calls that failed, by operation and outcome (timeout, network, server_error, client_error, bad_response, circuit_open, simulated_failure)',
      labelNames: ['operation', 'outcome'] as const,
      registers: [registry],
    }),
  };
}

/** Records one finished call: its latency, and an error count unless it ended `ok` or `declined`. */
export function recordPaymentCall(
  metrics: PaymentMetrics,
  operation: PaymentOperation,
  outcome: PaymentCallOutcome,
  seconds: number | undefined,
): void {
  if (seconds !== undefined) metrics.callDuration.observe({ operation, outcome }, seconds);
  if (outcome !== 'ok' && outcome !== 'declined') metrics.callErrors.inc({ operation, outcome });
}
