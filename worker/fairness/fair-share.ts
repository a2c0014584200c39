import type { RedisClient } from '#common';
import { ORDERS_QUEUE } from '#common';
import { fairSlotsKey } from '../settings.js';

/**
 * Per-customer fair share of the fleet (README, "Fairness"; docs/decisions/0005-fairness-on-open-source-bullmq.md): no customer holds
 * more than `maxActive` orders in processing at once, fleet-wide. Each customer's slots are a sorted
 * set of job ids scored by lease expiry, so a slot held by a killed worker lapses on its own, within the
 * job lock's duration (inside the stall-recovery bound); a job taken over after a stall holds its slot
 * again by id, never twice. A job that finds no free slot is told how long to wait: the customer's
 * deferred jobs are paced, one every `spacingMs` (about the time a slot takes to free up), so a flood
 * comes back at the rate its share can serve instead of rescanning the queue ahead of other customers.
 *
 * A job's slot costs the worker one round trip, not two: the gate (fair-gate.ts) holds a release back
 * and writes it together with its next acquire, or alone (with any others queued) after
 * RELEASE_LINGER_MS, or at close. So a slot frees up to RELEASE_LINGER_MS (or one acquire) later than
 * the job's end; meanwhile another job of the customer may be told to wait although its share has room.
 *
 * Every key lives under `<prefix>:orders:fair…`, and each script touches the keys of one customer (or
 * of the fleet register) only, so with a Redis Cluster hash-tag prefix (`{orders}`) they share a slot.
 */

// Redis TIME, not each worker's clock: leases and pacing compare times written by different hosts.
// A key outlives the longest lease or registration written into it, never shortened by a shorter one.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function keepFor(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end`;

/**
 * KEYS: slots, pacing. ARGV: jobId, leaseMs, maxActive, spacingMs. Returns 0 when the job holds a slot
 * (taken now or already its own), else the milliseconds it is to wait before trying again. A free slot
 * is looked for first: the job's own is asked after only when the customer's slots are all taken.
 * Lapsed leases are swept only when they could keep the job out (the set counts its max), and a set
 * that was empty gets its expiry without asking for the one it had (it had none): a customer with a
 * free slot costs TIME, ZCARD, ZADD and PEXPIRE (and PTTL while others hold slots), nothing more.
 */
const ACQUIRE = `${NOW}
local lease = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local held = redis.call('ZCARD', KEYS[1])
if held >= max then held = held - redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
if held < max or redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  if held == 0 then redis.call('PEXPIRE', KEYS[1], lease) else keepFor(KEYS[1], lease) end
  return 0
end
local nextAt = tonumber(redis.call('GET', KEYS[2]) or '0')
if nextAt < now then nextAt = now end
nextAt = nextAt + tonumber(ARGV[4])
redis.call('SET', KEYS[2], nextAt, 'PX', nextAt - now + lease)
return nextAt - now`;

/** KEYS: slots. ARGV: jobId, leaseMs. Extends a held slot's lease; 0 when the slot had lapsed. */
const RENEW = `${NOW}
local lease = tonumber(ARGV[2])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
keepFor(KEYS[1], lease)
return 1`;

/**
 * KEYS: fleet (workers by expiry), concurrency (worker → concurrency). ARGV: workerId, concurrency,
 * ttlMs ('0' to leave). Registers (or removes) the worker and returns the fleet's total concurrency.
 */
const REGISTER = `${NOW}
for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do redis.call('HDEL', KEYS[2], w) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  keepFor(KEYS[1], ttl)
  keepFor(KEYS[2], ttl)
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
local total = 0
for _, c in ipairs(redis.call('HVALS', KEYS[2])) do total = total + tonumber(c) end
return total`;

interface FairCommands {
  fairAcquire(
    slots: string,
    pacing: string,
    jobId: string,
    leaseMs: number,
    max: number,
    spacing: number,
  ): Promise<number>;
  fairRenew(slots: string, jobId: string, leaseMs: number): Promise<number>;
  fairRegister(fleet: string, concurrency: string, workerId: string, value: number, ttlMs: number): Promise<number>;
}

/** What the acquire script is told besides the customer and the job. */
export interface AcquireOptions {
  readonly leaseMs: number;
  readonly maxActive: number;
  readonly spacingMs: number;
}

/** A slot to give back. */
export interface SlotRelease {
  readonly customerId: string;
  readonly jobId: string;
}

/** A slot to ask for. */
export interface SlotRequest extends SlotRelease {
  readonly options: AcquireOptions;
}

/** Each command's own reply from {@link FairShareStore.releaseThenAcquire}. */
export interface SlotReplies {
  /** One per release, in order: its error, or undefined when the ZREM ran. */
  readonly released: readonly (Error | undefined)[];
  /** The acquire's answer (as `acquire` gives it) or its error; absent when there was no acquire. */
  readonly acquired?: { readonly waitMs: number } | { readonly err: Error };
}

/** The keys of the fair share under a queue prefix (tests and the bench read them too). */
export function fairKeys(prefix: string) {
  const base = `${prefix}:${ORDERS_QUEUE}:fair`;
  return {
    /** Sorted set: the customer's job ids holding a slot, scored by lease expiry (ms). */
    slots: (customerId: string) => fairSlotsKey(prefix, customerId),
    /** The time (ms) the customer's next deferred job is due. */
    pacing: (customerId: string) => `${base}:${customerId}:next`,
    /** Sorted set of live workers by registration expiry, and their concurrency (hash). */
    fleet: `${base}-fleet`,
    concurrency: `${base}-fleet:concurrency`,
    /** SCAN pattern of every customer's slot set (customer ids hold no ':'). */
    slotsPattern: fairSlotsKey(prefix, '*'),
  };
}

/** The fair share's Redis scripts on `redis` (ioredis sends EVALSHA and reloads a script a restart lost). */
export function createFairShareStore(redis: RedisClient, prefix: string) {
  const keys = fairKeys(prefix);
  if (!('fairAcquire' in redis)) {
    redis.defineCommand('fairAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    redis.defineCommand('fairRenew', { numberOfKeys: 1, lua: RENEW });
    redis.defineCommand('fairRegister', { numberOfKeys: 2, lua: REGISTER });
  }
  const commands = redis as unknown as FairCommands;
  /** 0: the job holds one of the customer's slots; else how many ms it is to wait. One script. */
  const acquire = (customerId: string, jobId: string, o: AcquireOptions) =>
    commands
      .fairAcquire(keys.slots(customerId), keys.pacing(customerId), jobId, o.leaseMs, o.maxActive, o.spacingMs)
      .then(Number);
  /** Frees the job's slot. One command. */
  const release = (customerId: string, jobId: string) =>
    redis.zrem(keys.slots(customerId), jobId).then(() => undefined);
  const asError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));
  return {
    keys,
    acquire,
    /** True while the slot was still held. One script. */
    renew: (customerId: string, jobId: string, leaseMs: number) =>
      commands.fairRenew(keys.slots(customerId), jobId, leaseMs).then((n) => Number(n) === 1),
    release,
    /**
     * Frees `releases` and then, when given, runs the acquire for `request`: all written at once, in
     * that order, on the one connection, before any reply is awaited (one round trip; Redis runs them in
     * order). Not an ioredis pipeline: building one copies every script defined on the connection
     * (BullMQ's too), which cost more CPU than it saved. Never rejects; each command's reply is its own,
     * so a failed ZREM is never taken for the acquire's answer, nor the reverse.
     */
    async releaseThenAcquire(releases: readonly SlotRelease[], request?: SlotRequest): Promise<SlotReplies> {
      const released = releases.map((r) => release(r.customerId, r.jobId).then(() => undefined, asError));
      const acquired = request
        ? acquire(request.customerId, request.jobId, request.options).then(
            (waitMs) => ({ waitMs }),
            (err: unknown) => ({ err: asError(err) }),
          )
        : undefined;
      return { released: await Promise.all(released), ...(acquired && { acquired: await acquired }) };
    },
    /** Registers the worker's concurrency for `ttlMs` (0: removes it); returns the fleet's total. */
    register: (workerId: string, concurrency: number, ttlMs: number) =>
      commands.fairRegister(keys.fleet, keys.concurrency, workerId, concurrency, ttlMs).then(Number),
    /** Slots held now per customer (lapsed leases left out): what tests and the bench check for leaks. */
    async slotsInUse(): Promise<Map<string, number>> {
      const counts = new Map<string, number>();
      const now = Date.now();
      let cursor = '0';
      do {
        const [next, found] = await redis.scan(cursor, 'MATCH', keys.slotsPattern, 'COUNT', 500);
        cursor = next;
        for (const key of found) {
          const customer = key.slice(keys.slots('').length);
          if (customer.includes(':')) continue;
          const held = await redis.zcount(key, now, '+inf');
          if (held > 0) counts.set(customer, held);
        }
      } while (cursor !== '0');
      return counts;
    },
  };
}

export type FairShareStore = ReturnType<typeof createFairShareStore>;
