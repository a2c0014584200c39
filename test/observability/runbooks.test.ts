import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../scripts/lib/process-runner.js';
import { headingAnchors } from '../helpers/markdown.js';
import { promtool, requirePromtool } from '../helpers/promtool.js';

/**
 * From any alert to what to do in one click: every alert links to its section of docs/runbook.md, the
 * section says what it means, how to confirm it, what to do and when it is over; and every alert's
 * expression is unit-tested by promtool on synthetic series, firing and quiet.
 */

const PROMETHEUS_DIR = 'deploy/prometheus';
const RUNBOOK_BASE = '{{ $externalLabels.runbook_base }}/docs/runbook.md#';

interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly annotations?: Record<string, string>;
}

interface RuleTests {
  readonly rule_files: string[];
  readonly tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

const file = (path: string) => readFile(join(REPO_ROOT, path), 'utf8');

async function alertRules(): Promise<AlertRule[]> {
  const rules = parse(await file(`${PROMETHEUS_DIR}/alerts.yml`)) as { groups: { rules: AlertRule[] }[] };
  return rules.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);
}

/** The runbook's sections by heading anchor: the text up to the next heading of the same level. */
function sections(markdown: string): Map<string, string> {
  const found = new Map<string, string>();
  const parts = markdown.split(/^## /m).slice(1);
  for (const part of parts) {
    const heading = part.slice(0, part.indexOf('\n'));
    const [anchor] = headingAnchors(`## ${heading}\n`);
    found.set(anchor, part);
  }
  return found;
}

test('when the alert rules are read, then each links to an existing section of docs/runbook.md', async (t) => {
  const rules = await alertRules();
  const runbook = await file('docs/runbook.md');
  const anchors = headingAnchors(runbook);
  t.true(rules.length >= 12, `${rules.length} alerts`);
  for (const rule of rules) {
    const url = rule.annotations?.runbook_url;
    t.truthy(url, `${rule.alert} has a runbook_url annotation`);
    t.true(url!.startsWith(RUNBOOK_BASE), `${rule.alert}: ${url} starts with ${RUNBOOK_BASE}`);
    const anchor = url!.slice(RUNBOOK_BASE.length);
    t.is(anchor, rule.alert.toLowerCase(), `${rule.alert}: the anchor is the alert's name`);
    t.true(anchors.has(anchor), `${rule.alert}: docs/runbook.md has a heading #${anchor}`);
  }
});

test('when a runbook section is read, then it says what the alert means, how to confirm it, what to do and when it is over', async (t) => {
  const bySection = sections(await file('docs/runbook.md'));
  for (const rule of await alertRules()) {
    const section = bySection.get(rule.alert.toLowerCase());
    t.truthy(section, `${rule.alert} has a section`);
    for (const part of ['**Means:**', '**Confirm:**', '**Do:**', '**Over when:**']) {
      t.true(section!.includes(part), `${rule.alert}: ${part}`);
    }
    // Confirming means running something: a curl, a query or the dlq script.
    t.regex(section!, /curl |promql '|npm run dlq/, `${rule.alert}: a command to confirm it`);
  }
});

test('when Prometheus sends an alert, then the runbook base is one of its external labels', async (t) => {
  const config = parse(await file(`${PROMETHEUS_DIR}/prometheus.yml`)) as {
    global: { external_labels?: Record<string, string> };
  };
  t.regex(
    config.global.external_labels?.runbook_base ?? '',
    /^https:\/\/\S+[^/]$/,
    'an absolute URL, no trailing slash',
  );
});

test.serial(
  'when promtool unit-tests the alert rules, then every alert fires on its synthetic series and stays quiet on the others',
  async (t) => {
    await requirePromtool(t);
    const tests = parse(await file(`${PROMETHEUS_DIR}/alerts.test.yml`)) as RuleTests;
    t.deepEqual(tests.rule_files, ['alerts.yml'], 'the tests load the real rules');
    const cases = tests.tests.flatMap((group) => group.alert_rule_test ?? []);
    for (const rule of await alertRules()) {
      const mine = cases.filter((c) => c.alertname === rule.alert);
      t.true(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${rule.alert}: a case where it fires`,
      );
      t.true(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${rule.alert}: a case where it stays quiet`,
      );
    }

    const run = await promtool(['test', 'rules', 'alerts.test.yml'], undefined, join(REPO_ROOT, PROMETHEUS_DIR));
    t.log(run.output.trim());
    t.is(run.code, 0, run.output);
    t.regex(run.output, /SUCCESS/);
  },
);
