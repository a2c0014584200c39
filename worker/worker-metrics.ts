import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ProcessorMetrics } from './processors/order-processor.js';

/**
 * The worker's own series: jobs by outcome, attempt duration, jobs in progress, end-to-end latency,
 * reconciler findings. No worker label: Prometheus tells workers apart by their target (`instance`).
 */
export function createWorkerMetrics(registry: Registry): ProcessorMetrics & {
  readonly active: Gauge;
  readonly reconcilerFindings: Counter<'kind'>;
  readonly endToEnd: Histogram;
} {
  return {
    jobs: new Counter({
      name: 'worker_jobs_total',
      help: 'Order job attempts by outcome: completed, failed_retry, dead, noop_terminal',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'worker_job_duration_seconds',
      help: 'Duration of one order job attempt in seconds, by outcome',
      labelNames: ['outcome'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    active: new Gauge({ name: 'worker_active_jobs', help: 'Order jobs being processed now', registers: [registry] }),
    // From the order's creation (the api's insert) to PROCESSED: queueing, retries and back-off included.
    endToEnd: new Histogram({
      name: 'order_end_to_end_seconds',
      help: 'Time from order creation to PROCESSED in seconds, observed by the worker that completed it',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers: [registry],
    }),
    reconcilerFindings: new Counter({
      name: 'reconciler_findings_total',
      help: 'Orders the reconciler found and repaired, by kind: unqueued (never enqueued), missing_job (job lost from Redis), failed_job (dead job of a PENDING order retried), event_readded (order event lost before reaching the notifications queue), compensation_due (cancelled order still holding effects whose job was missing or dead)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
  };
}
