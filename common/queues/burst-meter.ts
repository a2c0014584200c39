import type { RedisClient } from '../redis/connection.js';
import { ORDERS_QUEUE } from './orders-queue.js';

/**
 * Orders one customer may add within one minute before the rest of that minute's go behind other
 * customers' orders (README, "Fairness, priorities and schedules").
 */
export const BURST_PER_MINUTE = 600;

/**
 * The intake side of the fair share: counts each customer's orders per minute
 * (`<prefix>:orders:fair:<customerId>:in:<minute>`, gone two minutes later) and says which orders of a
 * burst are past {@link BURST_PER_MINUTE}. Those are queued with a BullMQ priority (see `orderJob`),
 * behind every other customer's standard orders: a flood never sits at the head of the FIFO for the
 * workers to scan through before anybody else's order. One INCR + PEXPIRE per order, all of a batch's
 * written together.
 */
export function createBurstMeter(redis: RedisClient, prefix: string, limit = BURST_PER_MINUTE) {
  return {
    /** For each customer id (one per order, in order): true when that order is past the customer's burst limit. */
    async overLimit(customerIds: readonly string[]): Promise<boolean[]> {
      if (customerIds.length === 0) return [];
      const minute = Math.floor(Date.now() / 60_000);
      // Written back to back before any reply is awaited: one round trip, as a pipeline would be, without
      // building one (ioredis copies every script defined on the connection, BullMQ's, into each pipeline).
      const counts = customerIds.map((customerId) => {
        const key = `${prefix}:${ORDERS_QUEUE}:fair:${customerId}:in:${minute}`;
        const count = redis.incr(key);
        void redis.pexpire(key, 120_000).catch(() => undefined);
        return count;
      });
      return (await Promise.all(counts)).map((count) => count > limit);
    },
  };
}

export type BurstMeter = ReturnType<typeof createBurstMeter>;
