import { Counter, Histogram, type Registry } from 'prom-client';
import type { SagaStepEvent } from './order-saga.js';

/** The workflow's series on the worker's registry (alerts and the dashboard read these names). */
export interface SagaMetrics {
  /** Orders this worker brought to an end: `processed`, `rejected` (with `reason`), `failed` (dead letter). */
  readonly outcomes: Counter<'outcome' | 'reason'>;
  /** Duration of each saga step that ran, by step and how it ended (done, rejected, failed, compensated). */
  readonly stepDuration: Histogram<'step' | 'outcome'>;
  /** Compensations by step and result: `ok`, or `failed` (it threw; retried later). */
  readonly compensations: Counter<'step' | 'result'>;
}

export function createSagaMetrics(registry: Registry): SagaMetrics {
  return {
    outcomes: new Counter({
      name: 'order_outcomes_total',
      help: 'Orders brought to an end by the worker, by outcome (processed, rejected, failed) and rejection reason (OUT_OF_STOCK, PAYMENT_DECLINED; "" otherwise)',
      labelNames: ['outcome', 'reason'] as const,
      registers: [registry],
    }),
    stepDuration: new Histogram({
      name: 'saga_step_duration_seconds',
      help: 'Duration of one order workflow step in seconds, by step (reserve, charge, confirm) and outcome (done, rejected, failed, compensated)',
      labelNames: ['step', 'outcome'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    compensations: new Counter({
      name: 'saga_compensations_total',
      help: 'Workflow compensations (refund of a charge, release of a reservation) by step and result (ok, failed)',
      labelNames: ['step', 'result'] as const,
      registers: [registry],
    }),
  };
}

/**
 * An `onStep` observer for the saga that feeds the step-duration and compensation series. In a
 * compensation (`phase` `compensate`), a step that fails is a failed compensation.
 */
export function observeSagaSteps(metrics: SagaMetrics, phase: 'run' | 'compensate'): (event: SagaStepEvent) => void {
  return (event) => {
    metrics.stepDuration.observe({ step: event.step, outcome: event.outcome }, event.ms / 1000);
    if (event.outcome === 'compensated') metrics.compensations.inc({ step: event.step, result: 'ok' });
    if (phase === 'compensate' && event.outcome === 'failed') {
      metrics.compensations.inc({ step: event.step, result: 'failed' });
    }
  };
}
