/**
 * The worker's tuning constants: what scripts, tests and manifests may rely on without reaching into
 * the composition root.
 *
 * Lock and stall settings, the same on every queue the worker runs (orders, notifications, the
 * reconciler's ticks). A job's lock lasts LOCK_DURATION_MS and is renewed every half of it while
 * the worker lives; a worker that dies (SIGKILL) stops renewing, and the stalled check (every
 * STALLED_INTERVAL_MS, run by any live worker) hands the job back within about
 * LOCK_DURATION_MS + STALLED_INTERVAL_MS. A job that stalls more than MAX_STALLED_COUNT times fails.
 */
export const LOCK_DURATION_MS = 10_000;
export const STALLED_INTERVAL_MS = 5_000;
export const MAX_STALLED_COUNT = 2;
/**
 * The shortest bound on one reconcile tick (4 intervals, when longer). A tick reads at most a few
 * dozen pages of 500 orders, seconds even on a large backlog; one still running past the bound is
 * stuck (a call on a dead connection) and is abandoned so the next tick can run.
 */
export const RECONCILE_TICK_TIMEOUT_FLOOR_MS = 60_000;
/** How long the jobs aborted at the shutdown bound get to hand themselves back before a forced close. */
export const HAND_BACK_MS = 3000;
/**
 * What a shutdown may take past SHUTDOWN_TIMEOUT_MS and the hand-back before the process exits anyway.
 * With Redis away BullMQ's close never settles (it waits for the connection to come back), so a worker
 * told to stop during an outage would otherwise never exit.
 */
export const SHUTDOWN_SLACK_MS = 2000;
/** Workers may wait longer for MongoDB than the api: a failed attempt is retried anyway. */
export const WORKER_MONGO_TIMEOUT_MS = 5000;
/**
 * How many reconcile intervals before the grace period the reconciler looks for ended orders whose
 * event never reached the `notifications` queue: enough to survive a missed tick or two (a restart),
 * short enough that each tick reads a small window and that the delivered events of that window are
 * still kept in Redis (the queue keeps the last 10 000; an event removed earlier would be sent again).
 */
export const RECONCILE_EVENT_LOOKBACK_TICKS = 3;
/**
 * Where the fair share keeps a customer's slots (README, "Fairness, priorities and schedules"): a sorted
 * set of job ids scored by lease expiry (ms). `fairSlotsKey(prefix, '*')` matches every customer's set
 * (and their `…:next` pacing keys, which hold no ':' before it).
 */
export const fairSlotsKey = (prefix: string, customerId: string) => `${prefix}:orders:fair:${customerId}`;
