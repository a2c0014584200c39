import { AppError, createBatcher, type Order } from '#common';
import { DuplicateOrderError, type OrderRepository } from './order-repository.js';
import { QueueUnavailableError, jobRequest, type JobRequest, type OrderJobs } from './order-jobs.js';

/**
 * The two writes of a new order (docs/design.md's outbox: insert, then add the job; the mark follows
 * in enqueue-marks.ts), one order at a time as the service sees them.
 */
export interface OrderIntake {
  /** Stores the new order; {@link DuplicateOrderError} when its id exists. */
  insert(order: Order): Promise<Order>;
  /** Adds the order's job; throws when Redis did not take it. */
  enqueue(order: Order): Promise<void>;
  /** Resolves once no write is waiting or in flight (for shutdown). */
  drain(): Promise<void>;
}

/** Each order written on its own: one insert and one add per request (`INTAKE_GROUP_COMMIT=off`). */
export function createDirectIntake(deps: {
  readonly repository: Pick<OrderRepository, 'insert'>;
  readonly jobs: Pick<OrderJobs, 'enqueue'>;
}): OrderIntake {
  return {
    insert: (order) => deps.repository.insert(order),
    enqueue: (order) => deps.jobs.enqueue(order),
    drain: () => Promise.resolve(),
  };
}

export interface GroupCommitOptions {
  /** The most orders in one insert or one add. */
  readonly maxBatch: number;
  /** The most orders waiting for each write; one more is answered 503 (insert) or 202 (add) at once. */
  readonly maxWaiting: number;
  /** Each order's insert is settled within this (503 past it): waiting for a slot counts. */
  readonly insertDeadlineMs: number;
  /** Each order's add is settled within this (the 202 path past it): waiting for a slot counts. */
  readonly enqueueDeadlineMs: number;
  /** Told the size of every batch (metrics). */
  readonly onBatch?: (write: 'insert' | 'enqueue', size: number) => void;
}

/**
 * Group commit at intake: the orders of concurrent requests share one unordered `insertMany`, and
 * then one `addBulk`. Each order keeps its own outcome (a duplicate id goes to that request's replay,
 * a failed add to that request's 202) and its own outbox order: its add is submitted only once its
 * insert is stored. See batcher.ts for the batching and its bounds.
 */
export function createGroupCommitIntake(deps: {
  readonly repository: Pick<OrderRepository, 'insertMany'>;
  readonly jobs: Pick<OrderJobs, 'enqueueMany'>;
  readonly options: GroupCommitOptions;
}): OrderIntake {
  const { repository, jobs, options } = deps;
  const inserts = createBatcher<Order, Order>({
    run: (orders) => insertDeduped(repository, orders),
    maxBatch: options.maxBatch,
    maxWaiting: options.maxWaiting,
    deadlineMs: options.insertDeadlineMs,
    gatherTurn: true,
    overloaded: (waiting) =>
      new AppError('SERVICE_UNAVAILABLE', `intake is saturated (${waiting} orders wait for the database); retry later`),
    timedOut: (ms) =>
      new AppError('SERVICE_UNAVAILABLE', `the database did not store the order within ${ms} ms; retry later`),
    onBatch: (size) => options.onBatch?.('insert', size),
  });
  const adds = createBatcher<JobRequest, void>({
    run: async (batch) => {
      await jobs.enqueueMany(batch);
      return batch.map(() => undefined);
    },
    maxBatch: options.maxBatch,
    maxWaiting: options.maxWaiting,
    deadlineMs: options.enqueueDeadlineMs,
    // The orders of one stored batch reach here a few microtasks apart: they go out as one add.
    gatherTurn: true,
    overloaded: (waiting) => new QueueUnavailableError(`${waiting} jobs already wait for Redis`),
    timedOut: (ms) => new QueueUnavailableError(`Redis did not take the job within ${ms} ms`),
    onBatch: (size) => options.onBatch?.('enqueue', size),
  });
  return {
    insert: (order) => inserts.submit(order),
    // Asked for here, in the request's context (its trace context rides along); built with its batch.
    enqueue: (order) => adds.submit(jobRequest(order)),
    async drain() {
      await inserts.drain();
      await adds.drain();
    },
  };
}

/**
 * One `insertMany` for a batch in which two requests may carry one id (one Idempotency-Key sent
 * twice at once): only the first of an id is written; a later one gets {@link DuplicateOrderError}
 * when the first was stored (its replay then reads the first), or the first's error otherwise.
 */
async function insertDeduped(
  repository: Pick<OrderRepository, 'insertMany'>,
  orders: readonly Order[],
): Promise<Array<Order | Error>> {
  const firstOf = new Map<string, number>();
  const unique: Order[] = [];
  const slots = orders.map((order) => {
    let slot = firstOf.get(order.id);
    if (slot === undefined) {
      slot = unique.push(order) - 1;
      firstOf.set(order.id, slot);
    }
    return slot;
  });
  const outcomes = await repository.insertMany(unique);
  const answered = new Set<number>();
  return orders.map((order, i) => {
    const outcome = outcomes[slots[i]];
    if (!answered.has(slots[i])) {
      answered.add(slots[i]);
      return outcome;
    }
    return outcome instanceof Error ? outcome : new DuplicateOrderError(order.id);
  });
}
