import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import type { Job } from 'bullmq';
import { Counter, Histogram, Registry } from 'prom-client';
import { createLogContext, createLogger, type ProcessOrderJobData } from '#common';
import { PROGRESS_EVERY_MS, createOrderProcessor } from '../../worker/processors/order-processor.js';
import type { SagaStepEvent } from '../../worker/saga/order-saga.js';
import type { OrderProcessingService } from '../../worker/services/order-processing-service.js';

const logger = createLogger({ service: 'test', level: 'silent' });

/** A job that records its progress writes and log lines (what the processor calls on it). */
function fakeJob() {
  const progress: unknown[] = [];
  const logs: string[] = [];
  const job = {
    id: 'ord_1',
    queueName: 'orders',
    attemptsMade: 0,
    opts: { attempts: 5 },
    data: { orderId: 'ord_1', correlationId: 'c-1' },
    updateProgress: (value: unknown) => {
      progress.push(value);
      return Promise.resolve();
    },
    log: (line: string) => {
      logs.push(line);
      return Promise.resolve(logs.length);
    },
  };
  return { job: job as unknown as Job<ProcessOrderJobData>, progress, logs };
}

/** A processor whose service runs `steps`: each is reported after its wait, as the saga reports them. */
function processorRunning(
  steps: ReadonlyArray<{ step: SagaStepEvent['step']; outcome: SagaStepEvent['outcome']; waitMs: number }>,
) {
  const registry = new Registry();
  const service = {
    async attempt(input: { onStep?: (event: SagaStepEvent) => void }) {
      for (const { step, outcome, waitMs } of steps) {
        await sleep(waitMs);
        input.onStep?.({ orderId: 'ord_1', step, outcome, ms: waitMs });
      }
      return 'processed';
    },
  } as unknown as OrderProcessingService;
  return createOrderProcessor({
    service,
    logger,
    logContext: createLogContext(),
    metrics: {
      jobs: new Counter({ name: 'jobs', help: 'jobs', labelNames: ['outcome'], registers: [registry] }),
      duration: new Histogram({ name: 'duration', help: 'duration', labelNames: ['outcome'], registers: [registry] }),
    },
    restartSeries: () => Promise.resolve(),
  });
}

test("when a job's steps end within the progress interval, then its progress is written once, with the last step, as it ends", async (t) => {
  const { job, progress } = fakeJob();
  const process = processorRunning([
    { step: 'reserve', outcome: 'done', waitMs: 1 },
    { step: 'charge', outcome: 'done', waitMs: 1 },
    { step: 'confirm', outcome: 'done', waitMs: 1 },
  ]);
  t.is(await process(job, 'token'), 'processed');
  t.deepEqual(progress, [{ step: 'confirm', outcome: 'done' }]);
  await sleep(PROGRESS_EVERY_MS + 50);
  t.is(progress.length, 1, 'no write follows the end of the job');
});

test('when a step runs longer than the progress interval, then the board sees the previous step while it runs', async (t) => {
  const { job, progress } = fakeJob();
  const process = processorRunning([
    { step: 'reserve', outcome: 'done', waitMs: 1 },
    { step: 'charge', outcome: 'done', waitMs: PROGRESS_EVERY_MS * 2 },
    { step: 'confirm', outcome: 'done', waitMs: 1 },
  ]);
  const running = process(job, 'token');
  await sleep(PROGRESS_EVERY_MS + 60);
  t.deepEqual(progress, [{ step: 'reserve', outcome: 'done' }], 'written within the interval, not held to the end');
  await running;
  t.deepEqual(progress, [
    { step: 'reserve', outcome: 'done' },
    { step: 'confirm', outcome: 'done' },
  ]);
});

test('when a step is not simply done, then it is logged at once and the progress still ends on the last step', async (t) => {
  const { job, progress, logs } = fakeJob();
  const process = processorRunning([{ step: 'reserve', outcome: 'rejected', waitMs: 1 }]);
  await process(job, 'token');
  t.deepEqual(logs, ['reserve rejected in 1 ms']);
  t.deepEqual(progress, [{ step: 'reserve', outcome: 'rejected' }]);
});
