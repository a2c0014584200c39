import type { RedisClient } from '../redis/connection.js';

/** The payment breaker's states, as workers publish them (and `payment_breaker_state` numbers them). */
export type PublishedBreakerState = 'closed' | 'half_open' | 'open';

/** A worker's publication counts as current for this long (it republishes every few seconds). */
export const BREAKER_REPORT_STALE_MS = 15_000;

/**
 * Redis hash where every worker publishes its payment breaker's state: field = worker id, value =
 * `<state>:<ms since epoch>`. Under the queue prefix, so it follows the prefix (and its hash tag).
 */
export function paymentBreakerKey(prefix: string): string {
  return `${prefix}:payment-breaker`;
}

/** Publishes one worker's breaker state (one HSET). */
export async function publishBreakerState(
  redis: RedisClient,
  prefix: string,
  workerId: string,
  state: PublishedBreakerState,
  at: number = Date.now(),
): Promise<void> {
  await redis.hset(paymentBreakerKey(prefix), workerId, `${state}:${at}`);
}

/** Withdraws a worker's publication (at shutdown), so a stopped worker is not counted. */
export async function withdrawBreakerState(redis: RedisClient, prefix: string, workerId: string): Promise<void> {
  await redis.hdel(paymentBreakerKey(prefix), workerId);
}

/** The fleet's view of the payment provider, as the health process reports it. */
export interface BreakerReport {
  /** `open` when any live worker's breaker is open, else `half_open` when any is, else `closed`; `unknown` when no worker published lately. */
  readonly breaker: PublishedBreakerState | 'unknown';
  /** Live workers by their breaker's state. */
  readonly workers: Readonly<Record<PublishedBreakerState, number>>;
}

/**
 * Reads every worker's publication (one HGETALL), ignores those older than `staleMs` (a worker that
 * died without withdrawing), and removes them (best effort), so the hash stays as small as the fleet.
 */
export async function readBreakerReport(
  redis: RedisClient,
  prefix: string,
  options: { readonly now?: number; readonly staleMs?: number } = {},
): Promise<BreakerReport> {
  const now = options.now ?? Date.now();
  const staleMs = options.staleMs ?? BREAKER_REPORT_STALE_MS;
  const entries = await redis.hgetall(paymentBreakerKey(prefix));
  const workers: Record<PublishedBreakerState, number> = { closed: 0, half_open: 0, open: 0 };
  const stale: string[] = [];
  for (const [workerId, value] of Object.entries(entries)) {
    const [state, at] = value.split(':');
    if (!(state in workers) || !(now - Number(at) <= staleMs)) {
      stale.push(workerId);
      continue;
    }
    workers[state as PublishedBreakerState] += 1;
  }
  if (stale.length > 0) await redis.hdel(paymentBreakerKey(prefix), ...stale).catch(() => undefined);
  const breaker =
    workers.open > 0 ? 'open' : workers.half_open > 0 ? 'half_open' : workers.closed > 0 ? 'closed' : 'unknown';
  return { breaker, workers };
}
