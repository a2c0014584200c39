import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What a delivery attempt came to, as the metrics count it. */
export type DeliveryOutcome = 'delivered' | 'retry' | 'gone' | 'exhausted';

/**
 * The webhook deliveries' series: attempts by outcome and status class, attempt latency, and the age
 * of the oldest event not yet delivered (waiting or backing off), read from the queue at each scrape.
 */
export function createNotificationMetrics(registry: Registry, oldestUndeliveredAt: () => Promise<number | undefined>) {
  return {
    deliveries: new Counter({
      name: 'webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome (delivered, retry, gone: 410 stops, exhausted: left in the failed set) and status class (2xx..5xx, timeout, network)',
      labelNames: ['outcome', 'status_class'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'webhook_delivery_duration_seconds',
      help: 'Duration of one webhook delivery attempt in seconds (until the status line, or the timeout)',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    oldest: new Gauge({
      name: 'webhook_oldest_undelivered_seconds',
      help: 'Age of the oldest order event waiting for delivery or retrying (0 when none)',
      registers: [registry],
      async collect() {
        try {
          const at = await oldestUndeliveredAt();
          this.set(at === undefined ? 0 : Math.max(0, (Date.now() - at) / 1000));
        } catch {
          // Redis away: the last value stays; the queue's own alerts say why.
        }
      },
    }),
  };
}

export type NotificationMetrics = ReturnType<typeof createNotificationMetrics>;
