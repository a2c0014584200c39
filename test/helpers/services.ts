import { randomBytes } from 'node:crypto';
import { resolveMongo, resolveRedis, withDatabase, type EmbeddedService } from '../../scripts/lib/embedded-services.js';

/**
 * The backing services of one test file (ava runs each file in its own process): MONGO_URL when it
 * answers, else mongodb-memory-server-core; REDIS_URL when it answers, else a redis-server from the PATH.
 */
let resolved: Promise<{ mongo: EmbeddedService; redis: EmbeddedService }> | undefined;

export async function testServices(): Promise<{ mongoUrl: (dbName: string) => string; redisUrl: string }> {
  resolved ??= (async () => {
    const [redis, mongo] = await Promise.all([
      resolveRedis(process.env, { strict: false }),
      resolveMongo(process.env, 'test', { strict: false }),
    ]);
    return { mongo, redis };
  })();
  const { mongo, redis } = await resolved;
  return { mongoUrl: (dbName) => withDatabase(mongo.url, dbName), redisUrl: redis.url };
}

/** Stops embedded services this file started (none when the URLs came from the environment). */
export async function stopTestServices(): Promise<void> {
  if (!resolved) return;
  const { mongo, redis } = await resolved;
  await Promise.all([mongo.stop(), redis.stop()]);
}

/** A name no other test file or run uses: for database names and queue prefixes. */
export function uniqueName(label: string): string {
  return `${label}_${process.pid}_${randomBytes(3).toString('hex')}`;
}
