import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { startContinuousProfiling } from '#common/telemetry';
import { REPO_ROOT } from '../../scripts/lib/process-runner.js';

test('when PYROSCOPE_SERVER_ADDRESS is unset or empty, then continuous profiling is off', async (t) => {
  for (const serverAddress of [undefined, '']) {
    const profiling = await startContinuousProfiling({ service: 'api', serverAddress });
    t.false(profiling.enabled);
    await t.notThrowsAsync(profiling.stop());
  }
});

test('when PYROSCOPE_SERVER_ADDRESS is not an http(s) URL, then the error names the variable, not its value', async (t) => {
  for (const serverAddress of ['ftp://user:secret@host', 'not a url']) {
    const err = await t.throwsAsync(startContinuousProfiling({ service: 'worker', serverAddress }));
    t.regex(err!.message, /PYROSCOPE_SERVER_ADDRESS must be an http/);
    t.false(err!.message.includes('secret'));
  }
});

test('when the sources are read, then @pyroscope/nodejs is only ever imported dynamically (nothing loaded when off)', (t) => {
  const files = ['api', 'worker', 'health', 'common'].flatMap((dir) =>
    readdirSync(join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(dir, f)),
  );
  const importing = files.filter((f) => readFileSync(join(REPO_ROOT, f), 'utf8').includes("'@pyroscope/nodejs'"));
  t.deepEqual(importing, [join('common', 'telemetry', 'continuous-profiling.ts')]);
  const source = readFileSync(join(REPO_ROOT, importing[0]), 'utf8');
  t.notRegex(source, /^import [^;]*'@pyroscope\/nodejs'/m, 'no static import');
  t.regex(source, /await import\('@pyroscope\/nodejs'\)/);
});
