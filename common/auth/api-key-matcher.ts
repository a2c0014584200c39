import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKey } from '../config/config.js';

/** Longest API key compared; anything longer is refused before hashing. */
export const API_KEY_MAX = 512;

/**
 * Finds the configured key a presented credential is: its sha256 is compared with every configured
 * hash in constant time (all of them, so timing tells nothing about which one matched or how many
 * there are). The api's authentication and the worker's profile route both use it.
 */
export function createApiKeyMatcher(keys: readonly ApiKey[]): (presented: string) => ApiKey | undefined {
  const hashed = keys.map((key) => ({ key, hash: Buffer.from(key.sha256, 'hex') }));
  return (presented) => {
    if (presented.length > API_KEY_MAX) return undefined;
    const digest = createHash('sha256').update(presented).digest();
    let found: ApiKey | undefined;
    for (const { key, hash } of hashed) {
      if (timingSafeEqual(digest, hash) && !found) found = key;
    }
    return found;
  };
}
