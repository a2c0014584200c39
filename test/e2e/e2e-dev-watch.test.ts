import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { freePort } from '../../scripts/lib/embedded-services.js';
import { REPO_ROOT, startProcess } from '../../scripts/lib/process-runner.js';
import { requestJson } from '../helpers/fleet.js';
import { testServices, uniqueName } from '../helpers/services.js';

// `npm run dev` is `node dist/scripts/dev.js --watch` after a build; here without tsc (--no-tsc), so
// the test itself plays the rebuild by adding a compiled file under dist/health/.

test('when a compiled file of the health process changes under npm run dev, then only health restarts, and the logs are pino-pretty lines', async (t) => {
  t.timeout(150_000);
  const services = await testServices();
  const name = uniqueName('e2e_dev_watch');
  const [apiPort, healthPort] = await Promise.all([freePort(), freePort()]);
  const probe = join(REPO_ROOT, 'dist', 'health', `zz-dev-watch-${randomBytes(4).toString('hex')}.js`);
  const dev = startProcess({
    name: 'dev',
    script: 'dist/scripts/dev.js',
    args: ['--watch', '--no-tsc'],
    env: {
      NODE_ENV: 'test',
      REDIS_URL: services.redisUrl,
      MONGO_URL: services.mongoUrl(name),
      QUEUE_PREFIX: name,
      API_PORT: String(apiPort),
      HEALTH_PORT: String(healthPort),
      WORKER_METRICS_PORT: '0',
      LOG_PRETTY: '1',
      NO_COLOR: '1',
    },
  });
  t.teardown(async () => {
    if (!t.passed) t.log(dev.lines.slice(-40).join('\n'));
    await dev.stop('SIGKILL', 5000);
    await rm(probe, { force: true });
    const redis = new Redis(services.redisUrl, { maxRetriesPerRequest: 1 });
    for await (const keys of redis.scanStream({ match: `${name}:*`, count: 500 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.unlink(...keys);
    }
    redis.disconnect();
    const db = await mongoose.createConnection(services.mongoUrl(name)).asPromise();
    await db.dropDatabase();
    await db.close();
  });

  await dev.waitForLine(/^dev +\| watching dist\//, 90_000);
  // Human-readable: the processes' JSON arrives as pino-pretty lines behind their label.
  t.truthy(dev.lines.find((l) => /^worker-1 \| \[\d\d:\d\d:\d\d\.\d{3}\] INFO: worker running$/.test(l)));
  t.false(
    dev.lines.some((l) => /^(api|worker-\d|health) +\| \{/.test(l)),
    'no raw JSON log line',
  );

  const before = dev.lines.length;
  await writeFile(probe, '// a rebuilt module of the health process\n');
  const restarted = await dev.waitForLine(/^dev +\| health restarted \(pid \d+\)$/, 60_000);
  t.truthy(restarted);
  const since = dev.lines.slice(before);
  t.truthy(since.find((l) => /^dev +\| changed: .*zz-dev-watch-.*; restarting health$/.test(l)));
  t.false(
    since.some((l) => /(api|worker-\d) restarted/.test(l)),
    'api and workers keep running',
  );
  const live = await requestJson(`http://127.0.0.1:${healthPort}/health/live`);
  t.is(live.status, 200);
  const api = await requestJson(`http://127.0.0.1:${apiPort}/health/live`);
  t.is(api.status, 200);

  t.deepEqual(await dev.stop('SIGTERM', 40_000), { code: 0, signal: null });
});
