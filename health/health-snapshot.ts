import type { BreakerReport, CheckResult, DependencyChecks } from '#common';
import type { QueueReport } from './checks/queue-check.js';

/** The dependencies and, when Redis answers, the orders queue: what `GET /health` and the gauges report. */
export interface HealthSnapshot {
  readonly dependencies: Record<'mongodb' | 'redis', CheckResult>;
  /** The queue's report; `{ error }` when Redis answered but the report failed; null when Redis is down. */
  readonly queue: QueueReport | { readonly error: string } | null;
  /** The workers' payment breakers (published to Redis); `{ error }` when unreadable; null when Redis is down. */
  readonly paymentProvider: BreakerReport | { readonly error: string } | null;
}

/**
 * Takes a {@link HealthSnapshot}: both dependency probes at once, then the queue report only when
 * Redis is up (a report against a Redis that is down would only wait for its timeout).
 */
export function createHealthSnapshot(deps: {
  readonly checks: DependencyChecks;
  readonly queueReport: () => Promise<QueueReport>;
  readonly paymentBreaker: () => Promise<BreakerReport>;
}): () => Promise<HealthSnapshot> {
  return async () => {
    const [mongodb, redis] = await Promise.all([deps.checks.mongodb(), deps.checks.redis()]);
    if (redis.status !== 'up') return { dependencies: { mongodb, redis }, queue: null, paymentProvider: null };
    const [queue, paymentProvider] = await Promise.all([
      deps.queueReport().catch((err: Error) => ({ error: err.message })),
      deps.paymentBreaker().catch((err: Error) => ({ error: err.message })),
    ]);
    return { dependencies: { mongodb, redis }, queue, paymentProvider };
  };
}
