import { Gauge, type Registry } from 'prom-client';
import { QUEUE_STATES, type QueueReport } from './checks/queue-check.js';
import type { HealthSnapshot } from './health-snapshot.js';

/** One refresh serves every gauge of a scrape (prom-client collects them concurrently). */
const REFRESH_TTL_MS = 500;

/**
 * Queue and dependency gauges, refreshed when Prometheus scrapes (collect callbacks), so nothing
 * polls Redis between scrapes; one refresh is shared by all gauges of a scrape, and it costs a few
 * O(1) Redis calls (counts, worker list, the oldest waiting job), never a scan of jobs. The failed
 * count is the dead-letter queue's size.
 */
export function registerHealthMetrics(deps: {
  readonly registry: Registry;
  readonly snapshot: () => Promise<HealthSnapshot>;
}): void {
  const { registry } = deps;
  let last:
    | { at: number; snapshot: Promise<{ dependencies: HealthSnapshot['dependencies']; queue?: QueueReport }> }
    | undefined;
  const refresh = () => {
    if (!last || Date.now() - last.at > REFRESH_TTL_MS) {
      last = {
        at: Date.now(),
        snapshot: deps.snapshot().then(({ dependencies, queue }) => ({
          dependencies,
          // A failed report sets no queue gauge, as when Redis is down.
          queue: queue && 'counts' in queue ? queue : undefined,
        })),
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
    name: 'queue_paused',
    help: 'Whether the orders queue is paused by an operator (1) or processing (0)',
    registers: [registry],
    async collect() {
      const { queue } = await refresh();
      this.reset();
      if (queue) this.set(queue.paused ? 1 : 0);
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
