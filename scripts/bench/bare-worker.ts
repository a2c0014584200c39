/**
 * Baselines "bare processing" and "raw BullMQ" (issue 8, redone for the saga of issue 13), run by the
 * bench as a child process like the real worker. BENCH_ROLE=processing: a bare BullMQ worker doing,
 * by hand with the driver, the MongoDB commands and the provider wait the real worker's saga needs
 * for a tracked SKU, in the same order: claim (findOneAndUpdate), reserve (one conditional updateOne
 * per SKU on `inventory`, a findOne only when it misses), checkpoint `steps.reserve` (updateOne), the
 * charge (an in-process wait of PROCESSING_DELAY_MS, as the simulated provider), checkpoint
 * `steps.charge` (updateOne), the sale (one updateOne per SKU, a findOne on a miss), the effect
 * (insertOne), complete (updateOne with `steps.confirm`). No code is shared with the worker: no
 * history entries, retries, compensation, logging, metrics or error mapping — a short item just
 * fails the job. BENCH_ROLE=noop: jobs that do nothing.
 *
 * Environment: MONGO_URL (processing only), REDIS_URL, QUEUE_PREFIX, WORKER_CONCURRENCY, BENCH_ROLE,
 * PROCESSING_DELAY_MS (processing; default 0). Sends `ready` over IPC once connected, then
 * `{ type: 'progress', done, lastAt }` every 50 ms while jobs finish.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';

interface BareItem {
  sku: string;
  quantity: number;
  unitPriceCents?: number;
}

interface BareOrder {
  _id: string;
  status: string;
  items?: BareItem[];
  totalCents?: number;
  attempts?: number;
  updatedAt?: Date;
  processedAt?: Date;
  steps?: Record<string, unknown>;
}

interface BareStock {
  _id: string;
  available: number;
  reserved: number;
  sold: number;
  holds: { orderId: string; quantity: number }[];
  updatedAt: Date;
}

const PROGRESS_EVERY_MS = 50;

async function main(): Promise<void> {
  const { MONGO_URL, REDIS_URL, QUEUE_PREFIX, WORKER_CONCURRENCY, BENCH_ROLE } = process.env;
  if (!REDIS_URL || !QUEUE_PREFIX) throw new Error('REDIS_URL and QUEUE_PREFIX are required');
  if (BENCH_ROLE !== 'processing' && BENCH_ROLE !== 'noop') throw new Error('BENCH_ROLE must be processing or noop');
  if (BENCH_ROLE === 'processing' && !MONGO_URL) throw new Error('MONGO_URL is required for BENCH_ROLE=processing');
  const delayMs = Number(process.env.PROCESSING_DELAY_MS ?? 0);

  const client = MONGO_URL ? new mongoose.mongo.MongoClient(MONGO_URL, { maxPoolSize: 50 }) : undefined;
  await client?.connect();
  const orders = client?.db().collection<BareOrder>('orders');
  const stock = client?.db().collection<BareStock>('inventory');
  const effects = client?.db().collection<{ _id: string; [field: string]: unknown }>('order_effects');

  /** One SKU's hold: taken (or already this order's, or the SKU is untracked); throws when short. */
  async function reserveOne(orderId: string, sku: string, quantity: number): Promise<void> {
    const taken = await stock!.updateOne(
      { _id: sku, available: { $gte: quantity }, 'holds.orderId': { $ne: orderId } },
      {
        $inc: { available: -quantity, reserved: quantity },
        $push: { holds: { orderId, quantity } },
        $set: { updatedAt: new Date() },
      },
    );
    if (taken.matchedCount === 1) return;
    const doc = await stock!.findOne(
      { _id: sku },
      { projection: { available: 1, holds: { $elemMatch: { orderId } } } },
    );
    if (doc && !doc.holds?.length && doc.available < quantity) throw new Error(`out of stock: ${sku}`);
  }

  /** Moves the order's hold on `sku` to `sold`; a miss (untracked, already sold) reads once and moves on. */
  async function sellOne(orderId: string, sku: string, quantity: number): Promise<void> {
    const sold = await stock!.updateOne(
      { _id: sku, holds: { $elemMatch: { orderId, quantity } } },
      { $inc: { reserved: -quantity, sold: quantity }, $pull: { holds: { orderId } }, $set: { updatedAt: new Date() } },
    );
    if (sold.matchedCount === 1) return;
    await stock!.findOne({ _id: sku }, { projection: { holds: { $elemMatch: { orderId } } } });
  }

  async function checkpoint(orderId: string, step: string, ref?: string): Promise<void> {
    const at = new Date();
    await orders!.updateOne(
      { _id: orderId, status: 'PROCESSING' },
      { $set: { [`steps.${step}`]: { status: 'done', at, ...(ref ? { ref } : {}) }, updatedAt: at } },
    );
  }

  async function processOrder(orderId: string): Promise<void> {
    if (!orders || !stock || !effects) return;
    const order = await orders.findOneAndUpdate(
      { _id: orderId, status: { $in: ['PENDING', 'PROCESSING'] } },
      { $set: { status: 'PROCESSING', updatedAt: new Date() }, $inc: { attempts: 1 } },
      { returnDocument: 'after' },
    );
    if (!order) return;
    const items = order.items ?? [];
    // The bare intake stores the body as posted (no total): the sum is what the api would have stored.
    const totalCents = order.totalCents ?? items.reduce((s, i) => s + i.quantity * (i.unitPriceCents ?? 0), 0);
    for (const item of items) await reserveOne(orderId, item.sku, item.quantity);
    await checkpoint(orderId, 'reserve');
    // The simulated provider's charge: a wait, then a charge id (nothing stored, as in the worker).
    if (totalCents > 0 && delayMs > 0) await sleep(delayMs);
    const chargeId = totalCents > 0 ? `ch_bare_${randomBytes(12).toString('hex')}` : undefined;
    await checkpoint(orderId, 'charge', chargeId);
    await Promise.all(items.map((item) => sellOne(orderId, item.sku, item.quantity)));
    try {
      await effects.insertOne({ _id: orderId, totalCents, createdAt: new Date() });
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
    const at = new Date();
    await orders.updateOne(
      { _id: orderId, status: 'PROCESSING' },
      { $set: { status: 'PROCESSED', processedAt: at, updatedAt: at, 'steps.confirm': { status: 'done', at } } },
    );
  }

  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const worker = new Worker<{ orderId: string }>(
    'orders',
    BENCH_ROLE === 'processing' ? (job) => processOrder(job.data.orderId) : async () => undefined,
    { connection, prefix: QUEUE_PREFIX, concurrency: Number(WORKER_CONCURRENCY ?? 10) },
  );
  let done = 0;
  let lastAt = 0;
  let sent = -1;
  worker.on('completed', () => {
    done += 1;
    lastAt = Date.now();
  });
  worker.on('failed', (_job, err) => process.stderr.write(`bare worker: job failed: ${err.message}\n`));
  const progress = setInterval(() => {
    if (done === sent) return;
    sent = done;
    process.send?.({ type: 'progress', done, lastAt });
  }, PROGRESS_EVERY_MS);
  await worker.waitUntilReady();
  process.send?.('ready');

  const stop = () => {
    clearInterval(progress);
    void worker
      .close()
      .catch(() => undefined)
      .then(() => client?.close())
      .finally(() => {
        connection.disconnect();
        process.exit(0);
      });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`bare worker: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
