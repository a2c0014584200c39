import test from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { headingAnchors, withoutFences } from '../helpers/markdown.js';

/**
 * The project stands on its own: every relative link and anchor in its Markdown files, and every
 * `docs/…` path named in its YAML files and source comments, points at something that exists. And the
 * observability guide keeps up with what it explains: an entry per dashboard panel.
 */

// dist/test/unit/links.test.js → the project root.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', '.tmp', 'results', '.pm2']);

function filesUnder(dir: string, accept: (name: string) => boolean): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) found.push(...filesUnder(join(dir, entry.name), accept));
    } else if (accept(entry.name)) {
      found.push(join(dir, entry.name));
    }
  }
  return found;
}

/** Markdown without code, fenced or inline, where link syntax is only text. */
function withoutCode(markdown: string): string {
  return withoutFences(markdown).replace(/`[^`\n]*`/g, '');
}

/** The targets of `[text](target)`, `![alt](target)` and `[label]: target` in a Markdown text. */
function markdownLinks(markdown: string): string[] {
  const text = withoutCode(markdown);
  const inline = [...text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);
  const defined = [...text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)].map((m) => m[1]);
  return [...inline, ...defined];
}

/** Why `target`, as written in `fromFile`, does not resolve; null when it does. */
function brokenTarget(fromFile: string, target: string, base = dirname(fromFile)): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // http:, https:, mailto: — not ours to check offline
  const [rawPath, anchor] = target.split('#', 2);
  const path = decodeURIComponent(rawPath);
  const file = path === '' ? fromFile : resolve(base, path);
  if (!file.startsWith(ROOT)) return `${target}: leaves the project`;
  if (!existsSync(file)) return `${target}: ${relative(ROOT, file)} does not exist`;
  if (anchor === undefined || anchor === '') return null;
  if (statSync(file).isDirectory() || !file.endsWith('.md')) return `${target}: an anchor into a non-Markdown file`;
  return headingAnchors(readFileSync(file, 'utf8')).has(anchor.toLowerCase())
    ? null
    : `${target}: no heading #${anchor} in ${relative(ROOT, file)}`;
}

const markdownFiles = filesUnder(ROOT, (name) => name.endsWith('.md'));
const yamlFiles = filesUnder(ROOT, (name) => /\.ya?ml$/.test(name));
const sourceFiles = ['api', 'worker', 'health', 'common', 'scripts', 'test'].flatMap((dir) =>
  existsSync(join(ROOT, dir)) ? filesUnder(join(ROOT, dir), (name) => name.endsWith('.ts')) : [],
);
// A `docs/` path as YAML comments, annotations and source comments write them (optionally with an anchor).
const DOCS_REFERENCE = /(?<![\w./-])docs\/[\w./-]*\w(?:#[\w-]+)?/g;

test('when the Markdown files are read, then every relative link and anchor resolves', (t) => {
  t.true(markdownFiles.some((f) => relative(ROOT, f) === 'README.md'));
  t.true(markdownFiles.some((f) => relative(ROOT, f) === join('docs', 'design.md')));
  const broken: string[] = [];
  let checked = 0;
  for (const file of markdownFiles) {
    for (const target of markdownLinks(readFileSync(file, 'utf8'))) {
      checked += 1;
      const why = brokenTarget(file, target);
      if (why) broken.push(`${relative(ROOT, file)}: ${why}`);
    }
  }
  t.deepEqual(broken, []);
  t.true(checked > 10, `${checked} links checked`);
});

test('when YAML files and source comments name a docs/ path, then it resolves from the project root', (t) => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of [...yamlFiles, ...sourceFiles]) {
    if (file.endsWith('links.test.ts')) continue;
    for (const [reference] of readFileSync(file, 'utf8').matchAll(DOCS_REFERENCE)) {
      checked += 1;
      const why = brokenTarget(file, reference, ROOT);
      if (why) broken.push(`${relative(ROOT, file)}: ${why}`);
    }
  }
  t.deepEqual(broken, []);
  t.true(checked > 5, `${checked} references checked`);
});

test('when the project is searched, then nothing cites a DESIGN.md outside it', (t) => {
  const citing = [...markdownFiles, ...yamlFiles, ...sourceFiles]
    .filter((file) => !file.endsWith('links.test.ts'))
    .filter((file) => /(?<![\w/])DESIGN\.md/.test(readFileSync(file, 'utf8')))
    .map((file) => relative(ROOT, file));
  t.deepEqual(citing, []);
});

test('when the anchors of a heading are computed, then they are the ones GitHub makes', (t) => {
  const anchors = headingAnchors(
    '# Observe it\n## `OrdersTargetDown`\n### Errors\n### Errors\n```\n# not a heading\n```\n',
  );
  t.deepEqual([...anchors], ['observe-it', 'orderstargetdown', 'errors', 'errors-1']);
  t.deepEqual(markdownLinks('[a](b.md#c) ![i](img.png) `[x](no.md)`\n[ref]: ./d.md\n'), [
    'b.md#c',
    'img.png',
    './d.md',
  ]);
});

test('when docs/observe.md is read, then every dashboard panel has its entry', (t) => {
  // Every alert has its section in docs/runbook.md instead: test/observability/runbooks.test.ts.
  const guide = readFileSync(join(ROOT, 'docs', 'observe.md'), 'utf8');
  const dashboard = JSON.parse(
    readFileSync(join(ROOT, 'deploy', 'grafana', 'dashboards', 'order-fleet.json'), 'utf8'),
  ) as { panels: { type: string; title: string }[] };
  const panels = dashboard.panels.filter((p) => p.type !== 'row').map((p) => p.title);
  const rows = dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title);

  t.true(panels.length > 0);
  t.deepEqual(
    panels.filter((panel) => !guide.includes(`- **${panel}**:`)),
    [],
    'panels without an entry',
  );
  t.deepEqual(
    rows.filter((row) => !guide.includes(`### ${row}\n`)),
    [],
    'dashboard rows without a section',
  );
});
