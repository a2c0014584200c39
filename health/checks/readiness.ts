import type { CheckResult, DependencyChecks } from '#common';

/** Readiness, computed afresh for one request: every check, and the ones that are down. */
export interface ReadinessResult {
  readonly ready: boolean;
  readonly checks: Record<string, CheckResult>;
  readonly failing: Record<string, CheckResult>;
}

/**
 * Ready when MongoDB and Redis each answer a ping within the timeout; otherwise the failing
 * dependencies, which the probe names in its 503 body (`{ status: 'error', error: { redis: … } }`).
 */
export function createReadinessCheck(checks: DependencyChecks) {
  return async (): Promise<ReadinessResult> => {
    const [mongodb, redis] = await Promise.all([checks.mongodb(), checks.redis()]);
    const results = { mongodb, redis };
    const failing = Object.fromEntries(Object.entries(results).filter(([, r]) => r.status === 'down'));
    return { ready: Object.keys(failing).length === 0, checks: results, failing };
  };
}
