import test from 'ava';
import { Cluster, Redis } from 'ioredis';
import { createRedisConnection, loadConfig } from '#common';
import { spawnRedisServer } from '../../scripts/lib/embedded-services.js';
import { freePortBlock } from '../../scripts/lib/redis-topology.js';

// The connection factory against a real redis-server with an ACL user (issue 16): credentials from
// REDIS_USERNAME / REDIS_PASSWORD reach the server; and each topology gets its own kind of client.

test('when REDIS_USERNAME and REDIS_PASSWORD name an ACL user, then the factory connects as that user, and a wrong password is refused', async (t) => {
  const [port] = await freePortBlock(44300, 1);
  const server = await spawnRedisServer(port, {
    extraArgs: ['--user', 'fleet', 'on', '>fleet-secret-1', '~*', '&*', '+@all', '--user', 'default', 'off'],
  });
  t.teardown(() => void server.kill('SIGKILL'));
  const url = `redis://127.0.0.1:${port}`;

  const good = createRedisConnection(
    loadConfig({ REDIS_URL: url, REDIS_USERNAME: 'fleet', REDIS_PASSWORD: 'fleet-secret-1' }).redis,
    { role: 'producer', commandTimeoutMs: 3000 },
  );
  good.on('error', () => undefined);
  t.teardown(() => good.disconnect());
  // A producer has no offline queue: its first command waits for the connection to be ready.
  await new Promise((ready) => good.once('ready', ready));
  t.is(await good.call('ACL', 'WHOAMI'), 'fleet');

  const bad = createRedisConnection(
    loadConfig({ REDIS_URL: url, REDIS_USERNAME: 'fleet', REDIS_PASSWORD: 'wrong-password' }).redis,
    { role: 'producer', commandTimeoutMs: 3000 },
  );
  const refused = new Promise<Error>((resolve) => bad.once('error', resolve));
  t.teardown(() => bad.disconnect());
  t.regex((await refused).message, /WRONGPASS|invalid username-password/);
});

test('when a Sentinel or Cluster topology is configured, then the factory makes the matching client with credentials and TLS', (t) => {
  const sentinel = createRedisConnection(
    loadConfig({
      REDIS_URL: '',
      REDIS_SENTINELS: '127.0.0.1:1,127.0.0.1:2',
      REDIS_SENTINEL_NAME: 'orders',
      REDIS_USERNAME: 'fleet',
      REDIS_PASSWORD: 'p1',
      REDIS_SENTINEL_PASSWORD: 'p2',
      REDIS_TLS: '1',
    }).redis,
    { role: 'worker' },
  );
  sentinel.on('error', () => undefined);
  t.teardown(() => sentinel.disconnect());
  t.true(sentinel instanceof Redis);
  const s = (sentinel as Redis).options;
  t.like(s, { name: 'orders', username: 'fleet', password: 'p1', sentinelPassword: 'p2', maxRetriesPerRequest: null });
  t.deepEqual(s.sentinels, [
    { host: '127.0.0.1', port: 1 },
    { host: '127.0.0.1', port: 2 },
  ]);
  t.truthy(s.tls, 'TLS to the data nodes');
  t.true(s.enableTLSForSentinelMode, 'TLS to the sentinels too (REDIS_SENTINEL_TLS defaults to REDIS_TLS)');

  const cluster = createRedisConnection(
    loadConfig({ REDIS_URL: '', REDIS_CLUSTER_NODES: '127.0.0.1:3', REDIS_PASSWORD: 'p3' }).redis,
    { role: 'producer', commandTimeoutMs: 500 },
  );
  cluster.on('error', () => undefined);
  t.teardown(() => cluster.disconnect());
  t.true(cluster instanceof Cluster);
  const c = (cluster as Cluster).options;
  t.like(c, { enableOfflineQueue: false, scaleReads: 'master' });
  t.like(c.redisOptions, { password: 'p3', maxRetriesPerRequest: 1, commandTimeout: 500 });
});
