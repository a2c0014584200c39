import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The fair share's series, in the worker's registry (README, "Fairness"). */
export function createFairShareMetrics(registry: Registry) {
  return {
    slotsHeld: new Gauge({
      name: 'worker_fair_slots_held',
      help: 'Customer slots this worker holds now (one per order job in processing under the fair share)',
      registers: [registry],
    }),
    maxActive: new Gauge({
      name: 'worker_fair_max_active',
      help: 'Orders one customer may hold in processing fleet-wide, as this worker applies it',
      registers: [registry],
    }),
    deferrals: new Counter({
      name: 'worker_fair_deferrals_total',
      help: 'Order jobs moved to delayed because their customer held all its slots (no attempt spent)',
      registers: [registry],
    }),
    deferralWait: new Histogram({
      name: 'worker_fair_deferral_wait_seconds',
      help: "How long a deferred order job was told to wait for its customer's next slot, in seconds",
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900],
      registers: [registry],
    }),
    unchecked: new Counter({
      name: 'worker_fair_unchecked_total',
      help: 'Order jobs run without a slot because the fair-share check failed (Redis error)',
      registers: [registry],
    }),
  };
}

export type FairShareMetrics = ReturnType<typeof createFairShareMetrics>;
