import { appRoutes } from '@bull-board/api/dist/routes.js';
import type { Queue } from 'bullmq';
import { PROCESS_ORDER_JOB, type ProcessOrderJobData } from '#common';

/** Where the api mounts Bull Board. */
export const BOARD = '/admin/queues';

/** One endpoint of the board's JSON API, with its parameters filled in. */
export interface Endpoint {
  readonly method: string;
  readonly path: string;
  /** A body that would make the action do something, were it let through. */
  readonly json?: unknown;
}

const BODIES: Record<string, unknown> = {
  add: { name: PROCESS_ORDER_JOB, data: { orderId: 'ord_00000000000000000000000000000000' }, options: {} },
  'update-data': { data: { orderId: 'tampered' } },
  delay: { delay: 1 },
  priority: { priority: 7 },
  concurrency: { concurrency: 1 },
  'rate-limit': { max: 1, duration: 60_000 },
  obliterate: { force: true },
};

/** Every route of the board's API (read from @bull-board/api itself, so a new action is covered). */
export function apiEndpoints(jobId: string): Endpoint[] {
  return appRoutes.api.flatMap((route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const paths = Array.isArray(route.route) ? route.route : [route.route];
    return methods.flatMap((method) =>
      paths.map((template) => {
        const path = template
          .replace(':queueName', 'orders')
          .replace(':jobId', jobId)
          .replace(':queueStatus', 'failed')
          .replace(':schedulerId', 'no-such-scheduler');
        const last = path.split('/').at(-1) ?? '';
        return {
          method: method.toUpperCase(),
          path: `${BOARD}${path}`,
          ...(method === 'get' ? {} : { json: BODIES[last] ?? {} }),
        };
      }),
    );
  });
}

/** The state-changing endpoints, plus a DELETE no route has (the guard must not depend on routing). */
export function actionEndpoints(jobId: string): Endpoint[] {
  return [
    ...apiEndpoints(jobId).filter((e) => e.method !== 'GET'),
    { method: 'DELETE', path: `${BOARD}/api/queues/orders/clean/failed` },
  ];
}

/** Everything the board could change in the queue, in a comparable form. */
export async function snapshot(queue: Queue<ProcessOrderJobData>) {
  const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed']);
  const described = await Promise.all(
    jobs.map(async (j) =>
      JSON.stringify([j.id, await j.getState(), j.attemptsMade, j.data, j.priority, j.delay, j.failedReason]),
    ),
  );
  return {
    counts: await queue.getJobCounts(),
    paused: await queue.isPaused(),
    globalConcurrency: await queue.getGlobalConcurrency(),
    rateLimitTtl: await queue.getRateLimitTtl(),
    jobs: described.sort(),
  };
}
