import type { CheckResult, DependencyChecks } from '#common';
import type { QueueReport } from './checks/queue-check.js';

/** The dependencies and, when Redis answers, the orders queue: what `GET /health` and the gauges report. */
export interface HealthSnapshot {
  readonly dependencies: Record<'mongodb' | 'redis', CheckResult>;
  /** The queue's report; `{ error }` when Redis answered but the report failed; null when Redis is down. */
  readonly queue: QueueReport | { readonly error: string } | null;
}

/**
 * Takes a {@link HealthSnapshot}: both dependency probes at once, then the queue report only when
 * Redis is up (a report against a Redis that is down would only wait for its timeout).
 */
export function createHealthSnapshot(deps: {
  readonly checks: DependencyChecks;
  readonly queueReport: () => Promise<QueueReport>;
}): () => Promise<HealthSnapshot> {
  return async () => {
    const [mongodb, redis] = await Promise.all([deps.checks.mongodb(), deps.checks.redis()]);
    const queue =
      redis.status === 'up' ? await deps.queueReport().catch((err: Error) => ({ error: err.message })) : null;
    return { dependencies: { mongodb, redis }, queue };
  };
}
