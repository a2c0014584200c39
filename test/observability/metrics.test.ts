import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../scripts/lib/process-runner.js';
import { promtool, requirePromtool } from '../helpers/promtool.js';
import { createOrders, listAllOrders, parseLine, requestJson, startTestFleet, waitFor } from '../helpers/fleet.js';

/**
 * The observability contract, checked with Prometheus' own tool: each process's /metrics passes
 * `promtool check metrics`, the alert rules and the scrape config pass `promtool check rules|config`,
 * and every metric the dashboard and the alerts query is served by some process of the fleet.
 */

const ALERTS = 'deploy/prometheus/alerts.yml';
const PROMETHEUS = 'deploy/prometheus/prometheus.yml';
const DASHBOARD = 'deploy/grafana/dashboards/order-fleet.json';
const DATASOURCES = 'deploy/grafana/provisioning/datasources/prometheus.yml';
const DASHBOARD_PROVIDERS = 'deploy/grafana/provisioning/dashboards/order-fleet.yml';
/** Series Prometheus makes itself for every target, served by no process. */
const SYNTHETIC = new Set(['up']);
const SUFFIXES = /_(bucket|sum|count)$/;

const file = (path: string) => readFile(join(REPO_ROOT, path), 'utf8');

/** Metric families of a Prometheus text exposition (`# TYPE name type`), with their types. */
function families(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
}

const PROMQL_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
]);

/** The metric names a PromQL expression selects (functions, keywords, labels and durations left out). */
function metricNames(expr: string): string[] {
  const cleaned = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of cleaned.matchAll(/(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const rest = cleaned.slice((m.index ?? 0) + m[0].length).trimStart();
    if (rest.startsWith('(') || PROMQL_KEYWORDS.has(m[0])) continue;
    names.push(m[0]);
  }
  return names;
}

interface Dashboard {
  uid: string;
  panels: {
    id: number;
    type: string;
    title: string;
    datasource?: { uid: string };
    targets?: { refId: string; expr: string }[];
  }[];
}

async function dashboardQueries(): Promise<{ panel: string; expr: string }[]> {
  const dashboard = JSON.parse(await file(DASHBOARD)) as Dashboard;
  return dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((target) => ({ panel: `${p.title} (${target.refId})`, expr: target.expr })),
  );
}

async function alertRules(): Promise<{ alert: string; expr: string }[]> {
  const rules = parse(await file(ALERTS)) as { groups: { rules: { alert: string; expr: string }[] }[] };
  return rules.groups.flatMap((g) => g.rules);
}

/** Grafana's variables replaced by values Prometheus accepts, so promtool can parse the query. */
const asPromql = (expr: string) => expr.replace(/\$__(rate_interval|interval|range)/g, '5m');

test.serial('when promtool checks the alert rules and the scrape config, then it reports success', async (t) => {
  await requirePromtool(t);

  const rules = await promtool(['check', 'rules', ALERTS]);
  t.log(rules.output.trim());
  t.is(rules.code, 0, rules.output);
  t.regex(rules.output, /SUCCESS: \d+ rules found/);

  const config = await promtool(['check', 'config', PROMETHEUS]);
  t.log(config.output.trim());
  t.is(config.code, 0, config.output);
  t.regex(config.output, /SUCCESS: 1 rule files found/, 'prometheus.yml loads alerts.yml');
});

test.serial('when the dashboard queries are parsed by promtool, then each one is valid PromQL', async (t) => {
  await requirePromtool(t);
  const queries = await dashboardQueries();
  t.true(queries.length >= 20, `the dashboard has ${queries.length} queries`);
  // promtool has no "parse this query" command: the queries become recording rules of a scratch file.
  const dir = await mkdtemp(join(tmpdir(), 'dashboard-rules-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const scratch = join(dir, 'dashboard.rules.yml');
  const rules = queries.map(
    (q, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(asPromql(q.expr))}`,
  );
  await writeFile(scratch, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);

  const result = await promtool(['check', 'rules', scratch]);
  t.is(result.code, 0, result.output);
  t.regex(result.output, new RegExp(`SUCCESS: ${queries.length} rules found`));
});

test.serial(
  'when Grafana provisions the dashboard, then every panel uses the provisioned data source and compose mounts both',
  async (t) => {
    const dashboard = JSON.parse(await file(DASHBOARD)) as Dashboard;
    const datasources = parse(await file(DATASOURCES)) as { datasources: { uid: string; url: string; type: string }[] };
    const providers = parse(await file(DASHBOARD_PROVIDERS)) as { providers: { options: { path: string } }[] };
    const compose = parse(await file('docker-compose.yml'), { merge: true }) as {
      services: Record<string, { profiles?: string[]; volumes?: string[] }>;
    };

    t.deepEqual(
      datasources.datasources.map((d) => [d.type, d.uid, d.url]),
      [['prometheus', 'prometheus', 'http://prometheus:9090']],
    );
    const ids = dashboard.panels.map((p) => p.id);
    t.is(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const panel of dashboard.panels.filter((p) => p.targets)) {
      t.is(panel.datasource?.uid, 'prometheus', panel.title);
    }
    const grafana = compose.services.grafana;
    t.deepEqual(grafana?.profiles, ['observability']);
    t.true(grafana.volumes?.includes('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro'));
    t.true(grafana.volumes?.includes(`./deploy/grafana/dashboards:${providers.providers[0].options.path}:ro`));
    t.true(
      compose.services.prometheus.volumes?.some((v) => v.startsWith(`./${ALERTS}:/etc/prometheus/alerts.yml`)),
      'prometheus gets the alert rules next to its config',
    );
  },
);

test.serial(
  'when each real process is scraped, then promtool finds no problem in its /metrics and every metric the dashboard and the alerts use is served',
  async (t) => {
    await requirePromtool(t);
    const fleet = await startTestFleet(t, { label: 'obs', workers: 1, env: { PROCESSING_DELAY_MS: '0' } });
    // Some traffic first, so histograms and labelled counters have series.
    const created = await createOrders(fleet.apiUrl, 5, 5);
    await waitFor('5 PROCESSED orders', async () => {
      const all = await listAllOrders(fleet.apiUrl, { status: 'PROCESSED' });
      return all.length === created.length ? true : undefined;
    });
    t.is((await requestJson(`${fleet.apiUrl}/no-such-route`)).status, 404);

    const worker = fleet.workers[0];
    const metricsLine = parseLine(await worker.waitForLine(/"msg":"worker metrics on /));
    const scrapes: Record<string, string> = {};
    for (const [name, url] of [
      ['api', `${fleet.apiUrl}/metrics`],
      ['health', `${fleet.healthUrl}/metrics`],
      ['worker', `http://127.0.0.1:${String(metricsLine?.port)}/metrics`],
    ] as const) {
      const res = await requestJson<string>(url);
      t.is(res.status, 200, url);
      t.regex(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      scrapes[name] = res.body;

      const check = await promtool(['check', 'metrics'], res.body);
      t.is(check.code, 0, `${name}: promtool check metrics:\n${check.output}`);
      t.is(check.output.trim(), '', `${name}: promtool reports no problem`);
    }

    // Names follow the conventions: counters end in _total, nothing else does; durations in seconds.
    const served = new Map<string, string>();
    for (const [name, text] of Object.entries(scrapes)) {
      for (const [family, type] of families(text)) {
        served.set(family, type);
        if (type === 'counter') t.regex(family, /_total$/, `${name}: ${family}`);
        else t.notRegex(family, /_total$/, `${name}: ${family} (${type})`);
        t.notRegex(family, /_(ms|milliseconds|minutes)$/, `${name}: ${family} is in base units`);
      }
      t.true(
        /^# TYPE \w+ \w+\n/m.test(text) && text.includes(`service="${name}"`),
        `${name}: series carry service="${name}"`,
      );
    }
    t.is(served.get('order_end_to_end_seconds'), 'histogram', 'the worker serves the end-to-end histogram');
    t.regex(
      scrapes.worker,
      /^order_end_to_end_seconds_count\{service="worker"\} 5$/m,
      'one observation per processed order',
    );

    const missing: string[] = [];
    const uses = [
      ...(await dashboardQueries()).map((q) => ({ where: `dashboard: ${q.panel}`, expr: q.expr })),
      ...(await alertRules()).map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
    ];
    for (const use of uses) {
      const names = metricNames(use.expr);
      t.true(names.length > 0, `${use.where} queries some metric: ${use.expr}`);
      for (const name of names) {
        const known =
          SYNTHETIC.has(name) ||
          served.has(name) ||
          (SUFFIXES.test(name) && ['histogram', 'summary'].includes(served.get(name.replace(SUFFIXES, '')) ?? ''));
        if (!known) missing.push(`${use.where}: ${name}`);
      }
    }
    t.deepEqual(missing, [], 'every metric the dashboard and the alerts use is served by a process');
  },
);

test('when PromQL is read for metric names, then functions, keywords, labels and durations are left out', (t) => {
  t.deepEqual(
    metricNames(
      'histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{route!~"a|b"}[$__rate_interval])))',
    ),
    ['http_request_duration_seconds_bucket'],
  );
  t.deepEqual(
    metricNames('sum(rate(a_total{status=~"5.."}[5m])) / sum(rate(b_total[5m])) > 0.05 or max(queue_jobs) == 0'),
    ['a_total', 'b_total', 'queue_jobs'],
  );
  t.deepEqual(metricNames('max by (dependency) (dependency_up) == 0'), ['dependency_up']);
});
