import { Gauge, type Registry } from 'prom-client';
import type { CheckResult, DependencyChecks } from '#common';
import { QUEUE_STATES, type QueueReport } from './checks/queue-check.js';

/** One refresh serves every gauge of a scrape (prom-client collects them concurrently). */
const REFRESH_TTL_MS = 500;

interface Snapshot {
  readonly dependencies: Record<'mongodb' | 'redis', CheckResult>;
  readonly queue?: QueueReport;
}

/**
 * Queue and dependency gauges, refreshed when Prometheus scrapes (collect callbacks), so nothing
 * polls Redis between scrapes; one refresh is shared by all gauges of a scrape, and it costs a few
 * O(1) Redis calls (counts, worker list, the oldest waiting job), never a scan of jobs. The failed
 * count is the dead-letter queue's size.
 */
export function registerHealthMetrics(deps: {
  readonly registry: Registry;
  readonly checks: DependencyChecks;
  readonly queueReport: () => Promise<QueueReport>;
}): void {
  const { registry, checks, queueReport } = deps;
  let last: { at: number; snapshot: Promise<Snapshot> } | undefined;
  const refresh = (): Promise<Snapshot> => {
    if (!last || Date.now() - last.at > REFRESH_TTL_MS) {
      last = {
        at: Date.now(),
        snapshot: (async () => {
          const [mongodb, redis] = await Promise.all([checks.mongodb(), checks.redis()]);
          const queue = redis.status === 'up' ? await queueReport().catch(() => undefined) : undefined;
          return { dependencies: { mongodb, redis }, queue };
        })(),
      };
    }
    return last.snapshot;
  };

  new Gauge({
    name: 'queue_jobs',
    help: 'Jobs in the orders queue by state (failed = dead-letter queue)',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const { queue } = await refresh();
      this.reset();
      if (queue) for (const state of QUEUE_STATES) this.set({ state }, queue.counts[state] ?? 0);
    },
  });
  new Gauge({
    name: 'queue_workers',
    help: 'Workers connected to the orders queue',
    registers: [registry],
    async collect() {
      const { queue } = await refresh();
      this.reset();
      if (queue) this.set(queue.workers);
    },
  });
  new Gauge({
    name: 'queue_oldest_waiting_job_age_seconds',
    help: 'Age of the oldest job waiting in the orders queue (0 when none waits)',
    registers: [registry],
    async collect() {
      const { queue } = await refresh();
      this.reset();
      if (queue) this.set(queue.oldestWaitingAt ? Math.max(0, (Date.now() - queue.oldestWaitingAt) / 1000) : 0);
    },
  });
  new Gauge({
    name: 'dependency_up',
    help: '1 when the dependency answered its probe',
    labelNames: ['dependency'] as const,
    registers: [registry],
    async collect() {
      const { dependencies } = await refresh();
      for (const [name, result] of Object.entries(dependencies)) {
        this.set({ dependency: name }, result.status === 'up' ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: 'dependency_latency_seconds',
    help: 'Latency of the last dependency probe in seconds',
    labelNames: ['dependency'] as const,
    registers: [registry],
    async collect() {
      const { dependencies } = await refresh();
      for (const [name, result] of Object.entries(dependencies)) {
        this.set({ dependency: name }, result.latencyMs / 1000);
      }
    },
  });
}
