/**
 * Baselines "bare processing" and "raw BullMQ" (issue 8), run by the bench as a child process like
 * the real worker. BENCH_ROLE=processing: a bare BullMQ worker doing the MongoDB writes the real
 * worker needs, with the driver (claim findOneAndUpdate, effect insertOne, complete updateOne).
 * BENCH_ROLE=noop: jobs that do nothing. No logging, metrics or error mapping.
 *
 * Environment: MONGO_URL (processing only), REDIS_URL, QUEUE_PREFIX, WORKER_CONCURRENCY, BENCH_ROLE.
 * Sends `ready` over IPC once connected, then `{ type: 'progress', done, lastAt }` every 50 ms while
 * jobs finish.
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';

interface BareOrder {
  _id: string;
  status: string;
  totalCents?: number;
  attempts?: number;
  updatedAt?: Date;
  processedAt?: Date;
}

const PROGRESS_EVERY_MS = 50;

async function main(): Promise<void> {
  const { MONGO_URL, REDIS_URL, QUEUE_PREFIX, WORKER_CONCURRENCY, BENCH_ROLE } = process.env;
  if (!REDIS_URL || !QUEUE_PREFIX) throw new Error('REDIS_URL and QUEUE_PREFIX are required');
  if (BENCH_ROLE !== 'processing' && BENCH_ROLE !== 'noop') throw new Error('BENCH_ROLE must be processing or noop');
  if (BENCH_ROLE === 'processing' && !MONGO_URL) throw new Error('MONGO_URL is required for BENCH_ROLE=processing');

  const client = MONGO_URL ? new mongoose.mongo.MongoClient(MONGO_URL, { maxPoolSize: 50 }) : undefined;
  await client?.connect();
  const orders = client?.db().collection<BareOrder>('orders');
  const effects = client?.db().collection<{ _id: string; [field: string]: unknown }>('order_effects');

  async function processOrder(orderId: string): Promise<void> {
    if (!orders || !effects) return;
    const order = await orders.findOneAndUpdate(
      { _id: orderId, status: { $in: ['PENDING', 'PROCESSING'] } },
      { $set: { status: 'PROCESSING', updatedAt: new Date() }, $inc: { attempts: 1 } },
      { returnDocument: 'after' },
    );
    if (!order) return;
    try {
      await effects.insertOne({ _id: orderId, totalCents: order.totalCents, createdAt: new Date() });
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
    const at = new Date();
    await orders.updateOne(
      { _id: orderId, status: 'PROCESSING' },
      { $set: { status: 'PROCESSED', processedAt: at, updatedAt: at } },
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
