import type { Model } from 'mongoose';
import { QUERY_MAX_TIME_MS, toStockLevel, type InventoryDocument, type StockLevel } from '#common';

export type InventoryRepository = ReturnType<typeof createInventoryRepository>;

/** The counts without the holds (a busy SKU may have many orders in flight). */
const LEVEL_PROJECTION = { _id: 1, available: 1, reserved: 1, sold: 1 };

const isDuplicateKey = (err: unknown): boolean => (err as { code?: number }).code === 11000;

/** The api's side of the `inventory` collection: read and set a SKU's stock. */
export function createInventoryRepository({ Inventory }: { readonly Inventory: Model<InventoryDocument> }) {
  const collection = Inventory.collection;

  /**
   * Sets the stock on hand: one atomic update of `available`, creating the document when the SKU is
   * untracked. A plain `$set` cannot race a reservation into a negative count: reservations only
   * take from `available` under the condition `available >= quantity` evaluated in their own atomic
   * update, so whichever lands second sees the other's result. Reserved and sold stock stay as they are.
   */
  async function setAvailable(sku: string, available: number): Promise<StockLevel> {
    const write = () =>
      collection.findOneAndUpdate(
        { _id: sku } as never,
        {
          $set: { available, updatedAt: new Date() },
          $setOnInsert: { reserved: 0, sold: 0, holds: [] },
        } as never,
        { upsert: true, returnDocument: 'after', projection: LEVEL_PROJECTION },
      );
    let doc;
    try {
      doc = await write();
    } catch (err) {
      // Two first PUTs of one SKU at once: mongod may fail the losing upsert on `_id`; the
      // document exists now, so the same update applies to it.
      if (!isDuplicateKey(err)) throw err;
      doc = await write();
    }
    if (!doc) throw new Error(`upsert of inventory ${sku} returned no document`);
    return toStockLevel(doc as unknown as InventoryDocument);
  }

  return {
    setAvailable,

    /** The SKU's stock, or null when it is untracked. */
    async find(sku: string): Promise<StockLevel | null> {
      const doc = await collection.findOne({ _id: sku } as never, {
        projection: LEVEL_PROJECTION,
        maxTimeMS: QUERY_MAX_TIME_MS,
      });
      return doc ? toStockLevel(doc as unknown as InventoryDocument) : null;
    },
  };
}
