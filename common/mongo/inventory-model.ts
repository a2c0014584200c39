import { Schema, type Connection, type Model } from 'mongoose';

/** One order's reservation of one SKU, kept on the SKU's document while it is in flight. */
export interface InventoryHold {
  orderId: string;
  quantity: number;
}

/**
 * Stored stock of one SKU (docs/design.md, "The order workflow"); `_id` is the SKU. A SKU without a
 * document is untracked: always available, nothing counted.
 *
 * `holds` lists the reservations in flight, one per order: every reserve, commit and release is a
 * single-document conditional update that checks and moves a hold together with the counts, which
 * is what makes each of them idempotent per order id. A hold leaves the array when the order's
 * reservation is committed (→ `sold`) or released (→ `available`), so the array holds only the
 * orders between `reserve` and `confirm` (or their compensation).
 *
 * Invariants, under any concurrency: every count is an integer ≥ 0; `reserved` is the sum of the
 * holds' quantities; `available + reserved + sold` only changes when the stock is set.
 */
export interface InventoryDocument {
  _id: string;
  available: number;
  reserved: number;
  sold: number;
  holds: InventoryHold[];
  updatedAt: Date;
}

/** A SKU's stock as the api returns it (`GET`/`PUT /inventory/:sku`). */
export interface StockLevel {
  readonly sku: string;
  readonly available: number;
  readonly reserved: number;
  readonly sold: number;
}

const count = { type: Number, required: true, min: 0, validate: Number.isInteger };

const inventorySchema = new Schema<InventoryDocument>(
  {
    _id: { type: String, required: true },
    available: count,
    reserved: count,
    sold: count,
    holds: { type: [{ _id: false, orderId: String, quantity: Number }], default: [] },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'inventory', versionKey: false, strict: 'throw' },
);
// Every query on `inventory` names one SKU by `_id`: no other index is needed (test/integration/indexes.test.ts).

/** Registers the Inventory model on a connection (never on the global mongoose). */
export function registerInventoryModel(connection: Connection): Model<InventoryDocument> {
  return (connection.models.Inventory ??
    connection.model<InventoryDocument>('Inventory', inventorySchema)) as Model<InventoryDocument>;
}

/** Creates the collection's declared indexes; idempotent. Run once at start by the api and the worker. */
export async function ensureInventoryIndexes(Inventory: Model<InventoryDocument>): Promise<void> {
  await Inventory.createIndexes();
}

/** The api's view of a stored SKU (the holds stay inside). */
export function toStockLevel(doc: Pick<InventoryDocument, '_id' | 'available' | 'reserved' | 'sold'>): StockLevel {
  return { sku: doc._id, available: doc.available, reserved: doc.reserved, sold: doc.sold };
}
