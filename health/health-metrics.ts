import { Gauge, type Registry } from 'prom-client';
import type { DependencyChecks } from '#common';
import { QUEUE_STATES, type QueueReport } from './checks/queue-check.js';

/**
 * Queue and dependency gauges, refreshed when Prometheus scrapes (collect callbacks), so nothing
 * polls Redis between scrapes. The failed count is the dead-letter queue's size.
 */
export function registerHealthMetrics(deps: {
  readonly registry: Registry;
  readonly checks: DependencyChecks;
  readonly queueReport: () => Promise<QueueReport>;
}): void {
  const { registry, checks, queueReport } = deps;
  const jobs = new Gauge({
    name: 'queue_jobs',
    help: 'Jobs in the orders queue by state (failed = dead-letter queue)',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  const workers = new Gauge({
    name: 'queue_workers',
    help: 'Workers connected to the orders queue',
    registers: [registry],
  });
  const up = new Gauge({
    name: 'dependency_up',
    help: '1 when the dependency answered its probe',
    labelNames: ['dependency'] as const,
    registers: [registry],
  });
  const latency = new Gauge({
    name: 'dependency_latency_seconds',
    help: 'Latency of the last dependency probe in seconds',
    labelNames: ['dependency'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'health_scrape_refresh',
    help: 'Refreshes the queue and dependency gauges on scrape (always 1)',
    registers: [registry],
    async collect() {
      this.set(1);
      const [mongodb, redis] = await Promise.all([checks.mongodb(), checks.redis()]);
      for (const [name, result] of Object.entries({ mongodb, redis })) {
        up.set({ dependency: name }, result.status === 'up' ? 1 : 0);
        latency.set({ dependency: name }, result.latencyMs / 1000);
      }
      if (redis.status === 'up') {
        const report = await queueReport().catch(() => undefined);
        if (report) {
          for (const state of QUEUE_STATES) jobs.set({ state }, report.counts[state] ?? 0);
          workers.set(report.workers);
        }
      }
    },
  });
}
