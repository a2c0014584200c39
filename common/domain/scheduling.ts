/**
 * How soon an order is processed (docs/design.md, "Priorities and schedules"): its priority class and
 * the earliest time it may run. The api checks them on intake; the queue maps them to job options.
 */

/** Priority classes, most urgent first: an express order overtakes a standard backlog, bulk waits for both. */
export const ORDER_PRIORITIES = ['express', 'standard', 'bulk'] as const;
export type OrderPriority = (typeof ORDER_PRIORITIES)[number];
export const DEFAULT_PRIORITY: OrderPriority = 'standard';

/** A `notBefore` may lie this far in the past (clock skew between a client and us); it then runs at once. */
export const NOT_BEFORE_MAX_PAST_MS = 60_000;
/** The furthest ahead an order may be scheduled: 30 days. */
export const NOT_BEFORE_MAX_AHEAD_MS = 30 * 86_400_000;

/** Why `notBefore` is refused at `now`, or null when it is within the limits. */
export function notBeforeProblem(notBefore: Date, now: Date): string | null {
  const ms = notBefore.getTime();
  if (Number.isNaN(ms)) return 'must be an ISO 8601 date-time';
  if (ms < now.getTime() - NOT_BEFORE_MAX_PAST_MS) return 'must not be more than 60 seconds in the past';
  if (ms > now.getTime() + NOT_BEFORE_MAX_AHEAD_MS) return 'must not be more than 30 days ahead';
  return null;
}

/** How long from `now` until an order scheduled for `notBefore` may run (0: now). */
export function scheduleDelayMs(notBefore: Date | null, now: Date): number {
  return notBefore ? Math.max(0, notBefore.getTime() - now.getTime()) : 0;
}
