import { join } from 'node:path';
import test from 'ava';
import { ESLint } from 'eslint';
import { REPO_ROOT } from '../../scripts/lib/process-runner.js';

// The fence of eslint.config.js: scripts reach the processes only through #common, a settings
// module and HTTP. Linted as text under a path of scripts/ (nothing is written).

async function restrictedImports(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: REPO_ROOT });
  const [result] = await eslint.lintText(code, { filePath: join(REPO_ROOT, file) });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

for (const [file, specifier] of [
  ['scripts/chaos/probe.ts', '../../worker/container.js'],
  ['scripts/bench/probe.ts', '../../api/repositories/order-queue.js'],
  ['scripts/lib/probe.ts', '../../health/health-metrics.js'],
  ['scripts/probe.ts', '../common/index.js'],
] as const) {
  test(`when a script imports ${specifier}, then lint refuses it`, async (t) => {
    const messages = await restrictedImports(file, `import * as m from '${specifier}';\nexport const x = m;\n`);
    t.is(messages.length, 1);
    t.regex(messages[0], /scripts import only #common/);
  });
}

test("when a script imports #common and a process's settings module, then lint lets it", async (t) => {
  const code = [
    "import { ORDERS_QUEUE } from '#common';",
    "import { LOCK_DURATION_MS } from '../../worker/settings.js';",
    "import { API_MONGO_TIMEOUT_MS } from '../../api/settings.js';",
    'export const x = [ORDERS_QUEUE, LOCK_DURATION_MS, API_MONGO_TIMEOUT_MS];',
    '',
  ].join('\n');
  t.deepEqual(await restrictedImports('scripts/chaos/probe.ts', code), []);
});
