import type { Model } from 'mongoose';
import type { InventoryDocument, OrderItem } from '#common';
import type { InventoryPort } from '../saga/ports.js';
import { createMongoBatcher } from './mongo-batcher.js';

type Items = readonly Pick<OrderItem, 'sku' | 'quantity'>[];

/**
 * How many times one item's reservation is tried when the conditional update misses although the
 * document read right after says it could have matched: each such round means a concurrent write
 * (a release, a stock change) landed in between, so the loop makes progress; the bound only keeps
 * a pathological churn from spinning forever (the error fails the attempt, which BullMQ retries).
 */
const MAX_ROUNDS = 20;

/** The most orders whose moves share one bulk write. */
const INVENTORY_BATCH_MAX = 128;

/** The order's items as one quantity per SKU, in the order the SKUs first appear. */
function perSku(items: Items): [sku: string, quantity: number][] {
  const totals = new Map<string, number>();
  for (const { sku, quantity } of items) {
    // A quantity that is not a positive integer would break the counts' invariants: it is a bug upstream.
    if (!Number.isSafeInteger(quantity) || quantity < 1) {
      throw new RangeError(`item ${sku} has quantity ${quantity}; a positive integer is required`);
    }
    totals.set(sku, (totals.get(sku) ?? 0) + quantity);
  }
  return [...totals];
}

type Take = 'taken' | 'held' | 'untracked' | 'short';

/** One conditional update of one SKU's document. */
interface Op {
  readonly filter: Record<string, unknown>;
  readonly update: Record<string, unknown>;
}

/**
 * The worker's side of the `inventory` collection: the saga's {@link InventoryPort}. Every move is
 * one atomic conditional update of one SKU's document that moves the counts and the order's hold
 * together, so no interleaving of concurrent orders, retries or duplicate calls can oversell, take
 * stock below zero, or settle one reservation twice (see InventoryDocument in common). With `bulk`
 * (WORKER_BATCH_WRITES) an order's moves go in one bulk write first, shared with the moves of the
 * orders of concurrent jobs (group commit: one round trip for all of them, not one per SKU).
 *
 * What it cannot know: a sale leaves no hold behind (so documents stay bounded), so a `reserve`
 * for an order *after* its `commit` takes stock again. The saga never does that (it resumes after
 * `reserve` once that step is checkpointed, and keeps that checkpoint once the sale has begun); an
 * attempt that outlived its lock and still runs `reserve` beside its successor must be fenced off by
 * the saga before it acts.
 */
export function createWorkerInventoryRepository({
  Inventory,
  bulk = true,
  deadlineMs = 5000,
}: {
  readonly Inventory: Model<InventoryDocument>;
  /** The moves of concurrent orders in one bulk write first (WORKER_BATCH_WRITES); false: one update per SKU. */
  readonly bulk?: boolean;
  /** With `bulk`: each order's bulk attempt is settled within this bound (common/batching/batcher.ts). */
  readonly deadlineMs?: number;
}): InventoryPort {
  // Straight to the driver: filters and updates are built here from the order's validated items.
  const collection = Inventory.collection;

  /** This order's hold on `sku` (null when it holds none), and the SKU's `available`; null when untracked. */
  async function readHold(
    sku: string,
    orderId: string,
  ): Promise<{ available: number; hold: { quantity: number } | null } | null> {
    const doc = (await collection.findOne({ _id: sku } as never, {
      // Only this order's hold comes back: a busy SKU may have many orders in flight.
      projection: { available: 1, holds: { $elemMatch: { orderId } } },
    })) as Pick<InventoryDocument, 'available' | 'holds'> | null;
    if (!doc) return null;
    return { available: doc.available, hold: doc.holds?.[0] ?? null };
  }

  /** Takes `quantity` of `sku` into a new hold of the order, when that much is available and it holds none yet. */
  function takeOp(orderId: string, sku: string, quantity: number): Op {
    return {
      filter: { _id: sku, available: { $gte: quantity }, 'holds.orderId': { $ne: orderId } },
      update: {
        $inc: { available: -quantity, reserved: quantity },
        $push: { holds: { orderId, quantity } },
        $set: { updatedAt: new Date() },
      },
    };
  }

  /** Moves the order's hold of `quantity` on `sku` to `to`, when it holds exactly that. */
  function settleOp(orderId: string, sku: string, quantity: number, to: 'sold' | 'available'): Op {
    return {
      filter: { _id: sku, holds: { $elemMatch: { orderId, quantity } } },
      update: {
        $inc: { reserved: -quantity, [to]: quantity },
        $pull: { holds: { orderId } },
        $set: { updatedAt: new Date() },
      },
    };
  }

  const updateOne = ({ filter, update }: Op) => collection.updateOne(filter as never, update as never);

  /**
   * The moves of the orders of concurrent calls in one unordered bulk write: true for every order when
   * every move matched, the common case. Otherwise some did not (short stock, a retry after a crash, a
   * concurrent change), and the bulk result does not say which: each order of the batch goes SKU by SKU,
   * where each move is idempotent (a hold taken or settled by the batch is found as such), so the
   * outcome is exact.
   */
  const batcher = bulk
    ? createMongoBatcher<readonly Op[], boolean>({
        run: async (orders) => {
          const ops = orders.flat();
          // One move alone is a plain updateOne: a bulk write of one costs the driver about half again as much.
          if (ops.length === 1) return [(await updateOne(ops[0])).matchedCount === 1];
          const result = await collection.bulkWrite(
            ops.map(({ filter, update }) => ({ updateOne: { filter: filter as never, update: update as never } })),
            { ordered: false },
          );
          const all = result.matchedCount === ops.length;
          return orders.map(() => all);
        },
        maxBatch: INVENTORY_BATCH_MAX,
        deadlineMs,
        what: 'stock moves',
      })
    : undefined;

  /** True when every move of `ops` matched (batched with other orders'); false: go SKU by SKU. */
  const allMatched = (ops: readonly Op[]): Promise<boolean> =>
    batcher && ops.length > 0 ? batcher.submit(ops) : Promise.resolve(false);

  async function takeOne(orderId: string, sku: string, quantity: number): Promise<Take> {
    for (let round = 1; ; round += 1) {
      const result = await updateOne(takeOp(orderId, sku, quantity));
      if (result.matchedCount === 1) return 'taken';
      const state = await readHold(sku, orderId);
      if (!state) return 'untracked';
      if (state.hold) return 'held'; // an earlier call for this order took it (a retry after a crash)
      if (state.available < quantity) return 'short';
      if (round >= MAX_ROUNDS) {
        throw new Error(`reserving ${sku} for ${orderId}: the stock kept changing under ${MAX_ROUNDS} tries`);
      }
    }
  }

  /**
   * Moves the order's hold on `sku` out: to `sold` (commit) or back to `available` (release). The
   * quantity is the hold's own; the caller's is only a guess that saves a read when it is right.
   */
  async function settleOne(orderId: string, sku: string, guess: number, to: 'sold' | 'available'): Promise<void> {
    let quantity = guess;
    for (let round = 1; ; round += 1) {
      const result = await updateOne(settleOp(orderId, sku, quantity, to));
      if (result.matchedCount === 1) return;
      const hold = (await readHold(sku, orderId))?.hold;
      // No hold: untracked, never reserved, or already settled by an earlier call: nothing to do.
      if (!hold) return;
      // A hold's quantity never changes while it exists, so a second round with it matches unless
      // a concurrent call for the same order settled it first (then the next read finds no hold).
      if (round >= MAX_ROUNDS) throw new Error(`settling ${sku} for ${orderId}: gave up after ${MAX_ROUNDS} tries`);
      quantity = hold.quantity;
    }
  }

  async function settle(orderId: string, items: Items, to: 'sold' | 'available'): Promise<void> {
    const skus = perSku(items);
    if (await allMatched(skus.map(([sku, quantity]) => settleOp(orderId, sku, quantity, to)))) return;
    // Each SKU is a document of its own and every move is idempotent: they can go at once.
    await Promise.all(skus.map(([sku, quantity]) => settleOne(orderId, sku, quantity, to)));
  }

  return {
    async reserve(orderId, items) {
      const skus = perSku(items);
      if (await allMatched(skus.map(([sku, quantity]) => takeOp(orderId, sku, quantity))))
        return { outcome: 'reserved' };
      // Item by item, so a short item stops the order before it takes any more.
      for (const [sku, quantity] of skus) {
        if ((await takeOne(orderId, sku, quantity)) === 'short') {
          // Everything this order holds goes back, including holds of an earlier crashed call.
          await settle(orderId, items, 'available');
          return { outcome: 'out_of_stock', sku };
        }
      }
      return { outcome: 'reserved' };
    },
    commit: (orderId, items) => settle(orderId, items, 'sold'),
    release: (orderId, items) => settle(orderId, items, 'available'),
    async holds(orderId, items) {
      const states = await Promise.all(perSku(items).map(([sku]) => readHold(sku, orderId)));
      const tracked = states.filter((state) => state !== null);
      return { tracked: tracked.length, holding: tracked.filter((state) => state.hold !== null).length };
    },
  };
}
