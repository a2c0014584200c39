import test, { type ExecutionContext } from 'ava';
import { ConfigError, hashTagOf, loadConfig } from '#common';

function problemsOf(t: ExecutionContext, env: NodeJS.ProcessEnv): string[] {
  return t.throws(() => loadConfig(env), { instanceOf: ConfigError }).problems;
}

test('when no topology is named, then one Redis at REDIS_URL is used, TLS from rediss://', (t) => {
  t.like(loadConfig({}).redis, { kind: 'single', url: 'redis://127.0.0.1:6379', tls: false });
  t.like(
    loadConfig({ REDIS_URL: 'rediss://cache.example:6380', REDIS_USERNAME: 'fleet', REDIS_PASSWORD: 'pw' }).redis,
    {
      kind: 'single',
      tls: true,
      username: 'fleet',
      password: 'pw',
    },
  );
  t.like(loadConfig({ REDIS_URL: 'redis://cache.example:6379', REDIS_TLS: '1' }).redis, { tls: true });
});

test('when REDIS_SENTINELS and REDIS_SENTINEL_NAME are set, then the Sentinel topology has every sentinel, credentials and TLS', (t) => {
  const config = loadConfig({
    REDIS_SENTINELS: '10.0.0.1:26379, sentinel-b.local:26380,[::1]:26381',
    REDIS_SENTINEL_NAME: 'orders-master',
    REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
    REDIS_PASSWORD: 'data-secret',
    REDIS_USERNAME: 'fleet',
    REDIS_TLS: '1',
  });
  t.deepEqual(config.redis, {
    kind: 'sentinel',
    sentinels: [
      { host: '10.0.0.1', port: 26379 },
      { host: 'sentinel-b.local', port: 26380 },
      { host: '::1', port: 26381 },
    ],
    name: 'orders-master',
    username: 'fleet',
    password: 'data-secret',
    tls: true,
    sentinelUsername: undefined,
    sentinelPassword: 'sentinel-secret',
    sentinelTls: true,
  });
  t.is(config.queuePrefix, 'bull');
  const plainSentinels = loadConfig({
    REDIS_SENTINELS: 'a:1',
    REDIS_SENTINEL_NAME: 'm',
    REDIS_TLS: '1',
    REDIS_SENTINEL_TLS: '0',
  });
  t.like(plainSentinels.redis, { kind: 'sentinel', tls: true, sentinelTls: false });
});

test('when REDIS_CLUSTER_NODES is set without QUEUE_PREFIX, then the prefix defaults to the hash tag {bull}', (t) => {
  const config = loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001' });
  t.like(config.redis, {
    kind: 'cluster',
    nodes: [
      { host: '127.0.0.1', port: 7000 },
      { host: '127.0.0.1', port: 7001 },
    ],
  });
  t.is(config.queuePrefix, '{bull}');
  t.is(hashTagOf(config.queuePrefix), 'bull');
});

test('when QUEUE_PREFIX carries a hash tag, then it is accepted on every topology', (t) => {
  for (const prefix of ['{orders}', 'shop-{orders}', '{orders}_eu', 'a{b}c']) {
    t.is(loadConfig({ QUEUE_PREFIX: prefix }).queuePrefix, prefix);
    t.is(loadConfig({ QUEUE_PREFIX: prefix, REDIS_CLUSTER_NODES: 'n1:7000' }).queuePrefix, prefix);
  }
});

test('when QUEUE_PREFIX has a malformed or doubled hash tag, then it is refused', (t) => {
  for (const prefix of ['{}', '{orders', 'orders}', '{a}{b}', '{a{b}}', '{or ders}', 'a'.repeat(65)]) {
    const problems = problemsOf(t, { QUEUE_PREFIX: prefix });
    t.true(
      problems.some((p) => p.startsWith('QUEUE_PREFIX')),
      `${prefix}: ${problems.join('; ')}`,
    );
  }
});

test('when a Cluster prefix has no hash tag, then the problem says to add one', (t) => {
  const problems = problemsOf(t, { REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: 'orders' });
  t.deepEqual(problems.length, 1);
  t.regex(problems[0], /QUEUE_PREFIX must carry a Redis Cluster hash tag .*\{orders\}/);
});

test('when two topologies are named, then the process stops naming both', (t) => {
  const both = problemsOf(t, { REDIS_CLUSTER_NODES: 'a:7000', REDIS_SENTINELS: 'b:26379', REDIS_SENTINEL_NAME: 'm' });
  t.regex(both.join('\n'), /exactly one Redis topology: REDIS_SENTINELS, REDIS_CLUSTER_NODES/);
  const withUrl = problemsOf(t, { REDIS_URL: 'redis://x:6379', REDIS_CLUSTER_NODES: 'a:7000' });
  t.regex(withUrl.join('\n'), /exactly one Redis topology: REDIS_URL, REDIS_CLUSTER_NODES/);
  // An empty REDIS_URL counts as unset (an .env file's `REDIS_URL=`).
  t.is(loadConfig({ REDIS_URL: '', REDIS_CLUSTER_NODES: 'a:7000' }).redis.kind, 'cluster');
});

test('when Sentinels come without a master name (or the reverse), or a node list is malformed, then it is refused', (t) => {
  t.regex(
    problemsOf(t, { REDIS_SENTINELS: 'a:26379' }).join('\n'),
    /REDIS_SENTINELS and REDIS_SENTINEL_NAME go together/,
  );
  t.regex(problemsOf(t, { REDIS_SENTINEL_NAME: 'm' }).join('\n'), /go together/);
  for (const nodes of ['a', 'a:0', 'a:70000', 'a:1,', 'a b:1', 'http://a:1']) {
    const problems = problemsOf(t, { REDIS_CLUSTER_NODES: nodes });
    t.true(
      problems.some((p) => p.startsWith('REDIS_CLUSTER_NODES must be comma-separated host:port')),
      nodes,
    );
  }
});

test('when a Redis password is wrong-typed into the topology, then its value never appears in a problem', (t) => {
  const problems = problemsOf(t, {
    REDIS_CLUSTER_NODES: 'a:7000',
    REDIS_SENTINELS: 'b:1',
    REDIS_SENTINEL_NAME: 'm',
    REDIS_PASSWORD: 'secret-marker-42',
  });
  t.false(problems.join('\n').includes('secret-marker-42'));
});
