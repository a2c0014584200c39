import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A private prom-client registry with the default Node metrics (event loop lag, heap, GC) and a
 * `service` label on every series. Private, so tests can build several apps in one process.
 */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}
