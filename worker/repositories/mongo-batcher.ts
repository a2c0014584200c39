import { createBatcher, type Batcher } from '#common';

/**
 * A group commit of one kind of the worker's MongoDB writes (WORKER_BATCH_WRITES; decision 0008), or
 * reads: what is asked for while a batch is in flight goes out together as the next one
 * (common/batching/batcher.ts), each settled within `deadlineMs`. A job's writes are awaited by the
 * job, so at most the worker's concurrency wait; the order events' reads are not (a job does not wait
 * for its event), and there the 10,000 waiting bound is what holds memory while MongoDB is slow.
 */
export function createMongoBatcher<I, O>(options: {
  readonly run: (items: readonly I[]) => Promise<ReadonlyArray<O | Error>>;
  readonly maxBatch: number;
  readonly deadlineMs: number;
  /** What is written or read, for the errors: "stock moves", "order updates", "effects", "order reads". */
  readonly what: string;
}): Batcher<I, O> {
  const { run, maxBatch, deadlineMs, what } = options;
  return createBatcher<I, O>({
    run,
    maxBatch,
    maxWaiting: 10_000,
    deadlineMs,
    gatherTurn: true,
    overloaded: (waiting) => new Error(`${waiting} ${what} already wait for MongoDB`),
    timedOut: (ms) => new Error(`MongoDB did not answer the ${what} within ${ms} ms`),
  });
}
