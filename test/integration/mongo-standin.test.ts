import { existsSync } from 'node:fs';
import { chmod, cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import mongoose from 'mongoose';
import { STANDIN_DIR, startStandin } from '../../scripts/lib/mongo-standin.js';

// The bench and the fault battery start a private MongoDB stand-in from ../shared/mongo-standin,
// whose packages are there only when something installed them (the folder is read-only in CI).
// Here a copy of the stand-in without node_modules plays that folder, and a temp dir the cache.

/** The stand-in's code and package files, without its packages or tests, in a fresh temp dir. */
async function standinWithoutPackages(t: import('ava').ExecutionContext): Promise<{ source: string; cache: string }> {
  const source = await mkdtemp(join(tmpdir(), 'standin-src-'));
  const cache = await mkdtemp(join(tmpdir(), 'standin-cache-'));
  t.teardown(() =>
    Promise.all([rm(source, { recursive: true, force: true }), rm(cache, { recursive: true, force: true })]),
  );
  for (const entry of ['server.js', 'package.json', 'package-lock.json', 'lib']) {
    await cp(join(STANDIN_DIR, entry), join(source, entry), { recursive: true });
  }
  await chmod(join(source, 'lib'), 0o755); // copied read-only: the teardown must be able to empty it
  return { source, cache };
}

test("when the stand-in's folder has no packages, then they are installed into a copy and the stand-in answers", async (t) => {
  t.timeout(180_000);
  const { source, cache } = await standinWithoutPackages(t);
  const first = await startStandin({ standinDir: source, cacheRoot: cache });
  t.teardown(() => void first.child.kill('SIGKILL'));
  t.true(first.server.startsWith(cache), first.server);
  t.false(existsSync(join(source, 'node_modules')), 'the source folder is left as it was');
  const client = await mongoose.createConnection(`${first.uri}/standin_install`).asPromise();
  try {
    t.deepEqual(await client.db!.admin().command({ ping: 1 }), { ok: 1 });
  } finally {
    await client.close();
  }
  first.child.kill('SIGTERM');

  // The second start uses the installed copy: same server file, and no staging folder is left.
  const second = await startStandin({ standinDir: source, cacheRoot: cache });
  t.teardown(() => void second.child.kill('SIGKILL'));
  t.is(second.server, first.server);
  t.deepEqual(
    (await readdir(cache)).filter((name) => name.includes('.staging-')),
    [],
  );
  second.child.kill('SIGTERM');
});

test('when the packages cannot be installed, then the error says what is missing and what to run', async (t) => {
  t.timeout(120_000);
  const { source, cache } = await standinWithoutPackages(t);
  // A package.json that its lock file does not match: npm ci refuses it at once, without the network.
  const pkg = JSON.parse(await readFile(join(source, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  pkg.dependencies['left-pad'] = '1.3.0';
  await writeFile(join(source, 'package.json'), JSON.stringify(pkg));
  const error = await t.throwsAsync(startStandin({ standinDir: source, cacheRoot: cache }));
  t.regex(
    error!.message,
    /^the stand-in's dependencies are missing in .+, and installing them into a copy at .+ failed \(npm ci --omit=dev: .+\)\. Run \(cd .+ && npm ci --omit=dev\), or set MONGOMS_SYSTEM_BINARY/s,
  );
  t.deepEqual(await readdir(cache), [], 'nothing half-installed is left');
});
