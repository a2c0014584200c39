import type { RedisClient } from '#common';
import { publishBreakerState, withdrawBreakerState, type Logger } from '#common';
import type { BreakerState } from './payment-metrics.js';

/**
 * Publishes this worker's payment breaker state to Redis every `intervalMs` (and once at start), so
 * the health process can show the fleet's breaker in `/health` without scraping every worker. A
 * publication that fails is logged at debug and retried on the next beat: it must never disturb jobs.
 */
export function createBreakerBeacon(deps: {
  readonly redis: RedisClient;
  readonly prefix: string;
  readonly workerId: string;
  readonly state: () => BreakerState;
  readonly logger: Logger;
  readonly intervalMs?: number;
}) {
  const intervalMs = deps.intervalMs ?? 2000;
  let timer: NodeJS.Timeout | undefined;
  const beat = () =>
    publishBreakerState(deps.redis, deps.prefix, deps.workerId, deps.state()).catch((err: unknown) =>
      deps.logger.debug({ err }, 'could not publish the payment breaker state; next beat retries'),
    );
  return {
    start(): void {
      void beat();
      timer = setInterval(() => void beat(), intervalMs);
      timer.unref();
    },
    async stop(): Promise<void> {
      clearInterval(timer);
      await withdrawBreakerState(deps.redis, deps.prefix, deps.workerId).catch(() => undefined);
    },
  };
}
