import type { JobsOptions } from 'bullmq';

/** One job to add: what `Queue.add` takes. */
export interface JobToAdd<D> {
  readonly name: string;
  readonly data: D;
  readonly opts?: JobsOptions;
}

/** What {@link addJobs} calls on a BullMQ `Queue` of `D` (any queue of that data is one). */
export interface JobAdder<D> {
  add(name: string, data: D, opts?: JobsOptions): Promise<unknown>;
  addBulk(jobs: { name: string; data: D; opts?: JobsOptions }[]): Promise<unknown>;
}

/**
 * Adds `jobs` in one round trip (the queue's default job options apply to each, as with `add`); all
 * are added or the call throws. A lone job is a plain `add`: BullMQ's `addBulk` of one costs nearly
 * twice its `add` (a MULTI around one script), and evenly spaced traffic makes batches of one.
 */
export async function addJobs<D>(queue: JobAdder<D>, jobs: readonly JobToAdd<D>[]): Promise<void> {
  if (jobs.length === 0) return;
  if (jobs.length === 1) {
    await queue.add(jobs[0].name, jobs[0].data, jobs[0].opts);
    return;
  }
  await queue.addBulk(jobs.map((job) => ({ name: job.name, data: job.data, opts: { ...job.opts } })));
}
