/**
 * Group commit for one kind of write: items submitted while a batch is being written wait, and go out
 * together as the next batch when a slot frees ("natural batching": no timer, no fixed delay; an
 * item submitted to an idle batcher is written at once, alone, or with `gatherTurn` with what else
 * arrives in the same turn of the event loop).
 *
 * Bounds, so a slow or frozen store costs answers, never memory or time:
 * - at most `maxBatch` items per batch, at most `concurrency` batches in flight;
 * - at most `maxWaiting` items waiting for a slot: one more is refused at once (`overloaded`), which
 *   the caller turns into a fast "retry later" (back-pressure instead of an unbounded queue);
 * - every item is settled within `deadlineMs` of its submission, waiting or in flight: past it the
 *   item rejects with `timedOut` (a waiting item is taken out of the queue and never written; a
 *   written one may still land, as a write whose socket timed out may).
 *
 * `run` gets the items of one batch and returns one outcome per item, in order: the item's value, or
 * an Error for that item alone. A `run` that throws fails every item of the batch with that error.
 */
export interface BatcherOptions<I, O> {
  readonly run: (items: readonly I[]) => Promise<ReadonlyArray<O | Error>>;
  readonly maxBatch: number;
  readonly maxWaiting: number;
  readonly deadlineMs: number;
  /** Batches in flight at once; 1 (the default) gives the largest batches. */
  readonly concurrency?: number;
  /** The error of an item refused because `maxWaiting` items already wait. */
  readonly overloaded: (waiting: number) => Error;
  /** The error of an item not settled within `deadlineMs`. */
  readonly timedOut: (deadlineMs: number) => Error;
  /**
   * An idle slot starts its write at the end of the current turn of the event loop (`setImmediate`)
   * instead of inside `submit`, so what arrives in the same turn goes out together: the callers that
   * one batch's answers wake (each submits to the next stage a few microtasks apart), the requests read
   * in one poll. It adds no timer and no wait beyond the turn. Default false: a lone item is written
   * inside `submit`.
   */
  readonly gatherTurn?: boolean;
  /** Told the size of every batch as it starts (metrics). */
  readonly onBatch?: (size: number) => void;
}

export type Batcher<I, O> = ReturnType<typeof createBatcher<I, O>>;

interface Pending<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
  /** Settled (answered or timed out); a settled waiting item is skipped when a batch is taken. */
  settled: boolean;
  /** Taken into a batch (no longer counted as waiting). */
  taken: boolean;
}

export function createBatcher<I, O>(options: BatcherOptions<I, O>) {
  const { run, maxBatch, maxWaiting, deadlineMs, overloaded, timedOut, onBatch } = options;
  const concurrency = options.concurrency ?? 1;
  if (!(maxBatch >= 1 && maxWaiting >= 0 && deadlineMs > 0 && concurrency >= 1)) {
    throw new RangeError('batcher: maxBatch and concurrency ≥ 1, maxWaiting ≥ 0, deadlineMs > 0');
  }
  let waiting: Pending<I, O>[] = [];
  /** Waiting items not yet settled (timed-out ones stay in `waiting` until a batch skips them). */
  let waitingCount = 0;
  let inFlight = 0;
  const idle = new Set<() => void>();

  function settle(pending: Pending<I, O>, outcome: { value: O } | { error: Error }): void {
    if (pending.settled) return;
    pending.settled = true;
    clearTimeout(pending.timer);
    if ('error' in outcome) pending.reject(outcome.error);
    else pending.resolve(outcome.value);
  }

  function takeBatch(): Pending<I, O>[] {
    const batch: Pending<I, O>[] = [];
    let i = 0;
    while (i < waiting.length && batch.length < maxBatch) {
      const pending = waiting[i];
      i += 1;
      if (pending.settled) continue;
      waitingCount -= 1;
      pending.taken = true;
      batch.push(pending);
    }
    waiting = i === waiting.length ? [] : waiting.slice(i);
    return batch;
  }

  async function write(batch: Pending<I, O>[]): Promise<void> {
    onBatch?.(batch.length);
    try {
      const outcomes = await run(batch.map((p) => p.item));
      batch.forEach((pending, i) => {
        const outcome = outcomes[i];
        settle(pending, outcome instanceof Error ? { error: outcome } : { value: outcome as O });
      });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      for (const pending of batch) settle(pending, { error });
    }
  }

  let pumpScheduled = false;
  function schedulePump(): void {
    if (pumpScheduled) return;
    pumpScheduled = true;
    setImmediate(() => {
      pumpScheduled = false;
      pump();
    });
  }

  function pump(): void {
    while (inFlight < concurrency && waitingCount > 0) {
      const batch = takeBatch();
      if (batch.length === 0) break;
      inFlight += 1;
      void write(batch).finally(() => {
        inFlight -= 1;
        pump();
      });
    }
    if (inFlight === 0 && waitingCount === 0) {
      waiting = [];
      for (const resolve of idle) resolve();
      idle.clear();
    }
  }

  return {
    /** The item's own outcome, once its batch is written; see the bounds above. */
    submit(item: I): Promise<O> {
      if (waitingCount >= maxWaiting && inFlight >= concurrency) return Promise.reject(overloaded(waitingCount));
      return new Promise<O>((resolve, reject) => {
        const pending: Pending<I, O> = { item, resolve, reject, timer: undefined, settled: false, taken: false };
        pending.timer = setTimeout(() => {
          if (pending.settled) return;
          if (!pending.taken) waitingCount -= 1;
          settle(pending, { error: timedOut(deadlineMs) });
        }, deadlineMs);
        waiting.push(pending);
        waitingCount += 1;
        if (inFlight >= concurrency) return; // the slot is filled as the batch in flight ends
        if (options.gatherTurn) schedulePump();
        else pump();
      });
    },

    /** Items waiting for a slot, and batches being written. */
    get load(): { readonly waiting: number; readonly inFlight: number } {
      return { waiting: waitingCount, inFlight };
    },

    /** Resolves once nothing waits and no batch is in flight (for shutdown). */
    drain(): Promise<void> {
      if (inFlight === 0 && waitingCount === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idle.add(resolve));
    },
  };
}
