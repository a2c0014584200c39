import test from 'ava';
import { Queue, WaitingError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { createLogger } from '#common';
import { createSeriesRestart } from '../../worker/processors/job-series.js';
import { stopTestServices, testServices, uniqueName } from '../helpers/services.js';

const logger = createLogger({ service: 'test', level: 'silent' });
const restartSeries = createSeriesRestart({ logger });

test.after.always(async () => {
  await stopTestServices();
});

/**
 * A real queue and worker on a prefix of their own. `decide` runs for each run of the job, with the
 * job's attemptsMade as the run saw it: 'ok' completes, 'fail' throws, 'restart' restarts the series.
 */
async function runJob(label: string, attempts: number, decide: (run: number, attemptsMade: number) => string) {
  const { redisUrl } = await testServices();
  const prefix = uniqueName(label);
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('orders', { connection, prefix });
  const seen: number[] = [];
  let finish: (job: Job) => void = () => undefined;
  const finished = new Promise<Job>((resolve) => (finish = resolve));
  const worker = new Worker(
    'orders',
    async (job, token) => {
      seen.push(job.attemptsMade);
      const what = decide(seen.length, job.attemptsMade);
      if (what === 'restart' && token) {
        await restartSeries(job, token);
        throw new WaitingError();
      }
      if (what === 'fail') throw new Error(`run ${seen.length} failed`);
      return 'done';
    },
    { connection, prefix, concurrency: 1 },
  );
  worker.on('completed', (job) => finish(job));
  worker.on('failed', (job) => {
    if (job && job.attemptsMade >= attempts && seen.length < 10) void job.retry('failed'); // as Bull Board's Retry does
  });
  await queue.add('process-order', { orderId: 'o' }, { jobId: 'o', attempts, backoff: { type: 'fixed', delay: 10 } });
  const job = await Promise.race([
    finished,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`runs: ${seen.join(',')}`)), 10_000)),
  ]);
  const state = await queue.getJobState('o');
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  return { seen, job, state };
}

test('when a dead job retried as it was restarts its series, then it runs again from attemptsMade 0', async (t) => {
  // Two failures kill the job; the board-style retry brings it back with attemptsMade 2; that run
  // restarts the series; the fresh first attempt succeeds.
  const { seen, job, state } = await runJob('series_dead', 2, (run) =>
    run <= 2 ? 'fail' : run === 3 ? 'restart' : 'ok',
  );

  t.deepEqual(seen, [0, 1, 2, 0]);
  t.is(state, 'completed');
  t.is(job.attemptsMade, 1, 'one attempt of the new series spent');
});

test('when a job restarts its series in the middle, then no back-off retry is scheduled and its counters start again', async (t) => {
  const { seen, state } = await runJob('series_mid', 3, (run) => (run === 1 ? 'fail' : run === 2 ? 'restart' : 'ok'));

  t.deepEqual(seen, [0, 1, 0]);
  t.is(state, 'completed');
});

test('when a restarted series fails again, then it gets its full count of attempts before it is dead', async (t) => {
  const { seen } = await runJob('series_again', 2, (run) => (run === 1 ? 'restart' : run <= 3 ? 'fail' : 'ok'));

  // The restarted job fails twice (attemptsMade 0, then 1) before it is dead; the board-style retry
  // then brings it back at attemptsMade 2, and that run succeeds.
  t.deepEqual(seen, [0, 0, 1, 2]);
});
