import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * prom-client's default gauges that end in `_total`, a suffix Prometheus reserves for counters
 * (`promtool check metrics` flags them). The gauges of the same name without the suffix hold the same
 * numbers by type: `sum(nodejs_active_handles)` is the total.
 */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/**
 * A private prom-client registry with the default Node metrics (event loop lag, heap, GC) and a
 * `service` label on every series. Private, so tests can build several apps in one process.
 */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  return registry;
}
