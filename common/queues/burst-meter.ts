import type { RedisClient } from '../redis/connection.js';
import { ORDERS_QUEUE } from './orders-queue.js';

/**
 * Orders one customer may add within one minute before the rest of that minute's go behind other
 * customers' orders (README, "Fairness, priorities and schedules").
 */
export const BURST_PER_MINUTE = 600;

/** A minute's counter outlives its minute by one more. */
const COUNTER_TTL_MS = 120_000;

/**
 * KEYS: the counters of a batch's orders (one per order; a customer's repeats count up in turn).
 * ARGV: ttlMs. Each counter goes up by one and gets its expiry when it is new (in the same atomic
 * step, so none is ever left without one); returns the counts, in order.
 */
const COUNT = `local counts = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
  counts[i] = n
end
return counts`;

interface BurstCommands {
  burstCount(numberOfKeys: number, ...args: Array<string | number>): Promise<number[]>;
}

/**
 * The intake side of the fair share: counts each customer's orders per minute
 * (`<prefix>:orders:fair:<customerId>:in:<minute>`, gone two minutes later) and says which orders of a
 * burst are past {@link BURST_PER_MINUTE}. Those are queued with a BullMQ priority (see `orderJob`),
 * behind every other customer's standard orders: a flood never sits at the head of the FIFO for the
 * workers to scan through before anybody else's order. One script per batch of orders (one command,
 * one round trip, whatever the batch's size).
 */
export function createBurstMeter(redis: RedisClient, prefix: string, limit = BURST_PER_MINUTE) {
  if (!('burstCount' in redis)) redis.defineCommand('burstCount', { lua: COUNT });
  const commands = redis as unknown as BurstCommands;
  return {
    /** For each customer id (one per order, in order): true when that order is past the customer's burst limit. */
    async overLimit(customerIds: readonly string[]): Promise<boolean[]> {
      if (customerIds.length === 0) return [];
      const minute = Math.floor(Date.now() / 60_000);
      const keys = customerIds.map((customerId) => `${prefix}:${ORDERS_QUEUE}:fair:${customerId}:in:${minute}`);
      const counts = await commands.burstCount(keys.length, ...keys, COUNTER_TTL_MS);
      return counts.map((count) => count > limit);
    },
  };
}

export type BurstMeter = ReturnType<typeof createBurstMeter>;
