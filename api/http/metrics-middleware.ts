import type { Middleware } from 'koa';
import { Counter, Histogram, type Registry } from 'prom-client';

/** Request count and latency by method, route template (never the raw path) and status. */
export function createHttpMetrics({ registry }: { readonly registry: Registry }): Middleware {
  const labelNames = ['method', 'route', 'status'] as const;
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency in seconds, by method, route template and status',
    labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return async (ctx, next) => {
    const end = duration.startTimer();
    try {
      await next();
    } finally {
      const labels = {
        method: ctx.method,
        route: (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched',
        status: String(ctx.status),
      };
      end(labels);
      requests.inc(labels);
    }
  };
}

/** The api's business counters: intake results, idempotency conflicts, reprocess actions. */
export function createApiMetrics({ registry }: { readonly registry: Registry }) {
  return {
    intakeResults: new Counter({
      name: 'orders_created_total',
      help: 'POST /orders results: created, replayed, accepted_unqueued, rejected',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    idempotencyConflicts: new Counter({
      name: 'orders_idempotency_conflicts_total',
      help: 'Idempotency-Key reused with a different body (422)',
      registers: [registry],
    }),
    reprocessActions: new Counter({
      name: 'orders_reprocess_actions_total',
      help: 'Dead-letter reprocess requests through the API, by scope (one, bulk, filtered)',
      labelNames: ['scope'] as const,
      registers: [registry],
    }),
  };
}

/** Orders per group-commit batch at intake, by write (`insert`, `enqueue`): how much each round trip carries. */
export function createIntakeBatchMetrics(registry: Registry): (write: 'insert' | 'enqueue', size: number) => void {
  const sizes = new Histogram({
    name: 'orders_intake_batch_size',
    help: 'Orders per group-commit batch at intake (one insertMany or one addBulk), by write',
    labelNames: ['write'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [registry],
  });
  return (write, size) => sizes.observe({ write }, size);
}
