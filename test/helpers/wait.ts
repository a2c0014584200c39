import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Calls `probe` until it returns something other than undefined; rejects after `timeoutMs` with `what`
 * and, when given, what `describe` says about the last state seen.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  describe?: () => Promise<string> | string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe ? `: ${await describe()}` : ''}`);
    }
    await sleep(50);
  }
}
