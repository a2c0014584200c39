import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Config } from '#common';
import type { PaymentPort } from '../saga/ports.js';
import { createHttpPaymentProvider } from './http-payment-provider.js';
import { createPaymentMetrics, type BreakerState } from './payment-metrics.js';
import { createSimulatedPaymentProvider } from './simulated-payment-provider.js';

/** The configuration the payment provider reads. */
export type PaymentProviderSettings = Pick<
  Config,
  | 'paymentProviderUrl'
  | 'paymentTimeoutMs'
  | 'paymentBreakerResetMs'
  | 'paymentBreakerWindowMs'
  | 'paymentBreakerErrorPercent'
  | 'paymentBreakerVolume'
  | 'processingDelayMs'
  | 'failureRate'
>;

/** The worker's payment provider: the port, the breaker's state (for health and logs), and shutdown. */
export interface PaymentProvider extends PaymentPort {
  readonly kind: 'http' | 'simulated';
  /** Always `closed` for the simulated provider, which has no breaker. */
  breakerState(): BreakerState;
  /** Stops the breaker's timers; the provider must not be used afterwards. */
  close(): void;
}

/**
 * Picks the provider (docs/design.md, "Payment provider"): the HTTP provider with its circuit breaker when
 * `paymentProviderUrl` is set, else the in-process simulated one. Registers the payment series on
 * `registry` either way.
 */
export function createPaymentProvider(deps: {
  readonly settings: PaymentProviderSettings;
  readonly registry: Registry;
  readonly logger: Logger;
}): PaymentProvider {
  const { settings, logger } = deps;
  const metrics = createPaymentMetrics(deps.registry);
  if (settings.paymentProviderUrl) {
    const http = createHttpPaymentProvider({
      baseUrl: settings.paymentProviderUrl,
      timeoutMs: settings.paymentTimeoutMs,
      breaker: {
        resetMs: settings.paymentBreakerResetMs,
        windowMs: settings.paymentBreakerWindowMs,
        errorThresholdPercent: settings.paymentBreakerErrorPercent,
        volumeThreshold: settings.paymentBreakerVolume,
      },
      metrics,
      logger,
    });
    return { kind: 'http', ...http };
  }
  const simulated = createSimulatedPaymentProvider({
    delayMs: settings.processingDelayMs,
    failureRate: settings.failureRate,
    metrics,
  });
  return { kind: 'simulated', ...simulated, breakerState: () => 'closed', close: () => undefined };
}
