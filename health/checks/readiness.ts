import { HealthCheckError } from '@godaddy/terminus';
import type { CheckResult, DependencyChecks } from '#common';

/**
 * Ready when MongoDB and Redis each answer a ping within the timeout; otherwise a 503 whose body
 * names the failing dependency (`{ status: 'error', error: { redis: { status: 'down', … } } }`).
 */
export function createReadinessCheck(checks: DependencyChecks) {
  return async (): Promise<Record<string, CheckResult>> => {
    const [mongodb, redis] = await Promise.all([checks.mongodb(), checks.redis()]);
    const results = { mongodb, redis };
    const failing = Object.fromEntries(Object.entries(results).filter(([, r]) => r.status === 'down'));
    if (Object.keys(failing).length > 0) {
      throw new HealthCheckError(`not ready: ${Object.keys(failing).join(', ')} down`, failing);
    }
    return results;
  };
}
