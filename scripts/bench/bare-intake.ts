/**
 * Baseline "bare intake" (issue 8), run by the bench as a child process exactly like the real api:
 * a bare Koa handler that parses the JSON body, inserts one document with the MongoDB driver and
 * adds one BullMQ job with the order id as job id. No validation, logging, metrics or middleware.
 *
 * Environment: MONGO_URL, REDIS_URL, QUEUE_PREFIX, API_PORT. Sends `ready` over IPC when listening.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import Koa from 'koa';
import mongoose from 'mongoose';

interface BareOrder {
  _id: string;
  [field: string]: unknown;
}

async function main(): Promise<void> {
  const { MONGO_URL, REDIS_URL, QUEUE_PREFIX, API_PORT } = process.env;
  if (!MONGO_URL || !REDIS_URL || !QUEUE_PREFIX) throw new Error('MONGO_URL, REDIS_URL and QUEUE_PREFIX are required');
  // The same pool bound as the real api (common/mongo/connection.ts).
  const client = new mongoose.mongo.MongoClient(MONGO_URL, { maxPoolSize: 50 });
  await client.connect();
  const orders = client.db().collection<BareOrder>('orders');
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('orders', { connection: redis, prefix: QUEUE_PREFIX });

  const app = new Koa();
  app.use(async (ctx) => {
    if (ctx.method !== 'POST' || ctx.path !== '/orders') {
      ctx.status = 404;
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    const id = `ord_${randomBytes(16).toString('hex')}`;
    await orders.insertOne({ ...body, _id: id, status: 'PENDING', createdAt: new Date() });
    await queue.add('process-order', { orderId: id }, { jobId: id });
    ctx.status = 201;
    ctx.body = { id, status: 'PENDING' };
  });
  const server = app.listen(Number(API_PORT ?? 0), '127.0.0.1', () => {
    process.stdout.write(`bare intake listening on port ${(server.address() as AddressInfo).port}\n`);
    process.send?.('ready');
  });
  const stop = () => {
    server.close();
    void Promise.allSettled([queue.close(), client.close()]).then(() => {
      redis.disconnect();
      process.exit(0);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`bare intake: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
