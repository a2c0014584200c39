import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';

/*
 * scripts/audit.mjs, the CI gate on `npm audit --omit=dev`, fed saved reports (--report) so its
 * decisions are checked without a registry: which advisories fail, which the allow-list excuses, and
 * that an audit that could not run is a failure, never a pass.
 */

const SCRIPT = path.resolve('scripts/audit.mjs');
let dir: string;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'audit-script-'));
});

test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

function advisory(name: string, ghsa: string, severity: string) {
  return {
    source: 1000 + name.length,
    name,
    dependency: name,
    title: `${severity} problem in ${name}`,
    url: `https://github.com/advisories/${ghsa}`,
    severity,
    range: '<2.0.0',
  };
}

/** An `npm audit --json` (v2) report: one advisory per package, plus a package affected through another. */
function report(entries: Array<[string, string, string]>) {
  const vulnerabilities: Record<string, unknown> = {};
  for (const [name, ghsa, severity] of entries) {
    vulnerabilities[name] = {
      name,
      severity,
      isDirect: false,
      via: [advisory(name, ghsa, severity)],
      effects: ['parent'],
      range: '<2.0.0',
      nodes: [`node_modules/${name}`],
      fixAvailable: true,
    };
  }
  if (entries.length > 0) {
    vulnerabilities.parent = {
      name: 'parent',
      severity: entries[0][2],
      isDirect: true,
      via: entries.map(([name]) => name),
      effects: [],
      range: '*',
      nodes: ['node_modules/parent'],
      fixAvailable: false,
    };
  }
  const counts = { info: 0, low: 0, moderate: 0, high: 0, critical: 0, total: entries.length };
  for (const [, , severity] of entries) counts[severity as keyof typeof counts] += 1;
  return { auditReportVersion: 2, vulnerabilities, metadata: { vulnerabilities: counts, dependencies: { prod: 42 } } };
}

let n = 0;
async function run(reportBody: unknown, allow: unknown = { allow: [] }) {
  n += 1;
  const reportFile = path.join(dir, `report-${n}.json`);
  const allowFile = path.join(dir, `allow-${n}.json`);
  await writeFile(reportFile, typeof reportBody === 'string' ? reportBody : JSON.stringify(reportBody));
  await writeFile(allowFile, typeof allow === 'string' ? allow : JSON.stringify(allow));
  return new Promise<{ code: number; out: string; err: string }>((resolve) => {
    execFile(process.execPath, [SCRIPT, '--report', reportFile, '--allowlist', allowFile], (error, out, err) => {
      resolve({ code: error ? Number(error.code) : 0, out, err });
    });
  });
}

const HIGH = 'GHSA-aaaa-bbbb-cccc';
const CRITICAL = 'GHSA-dddd-eeee-ffff';
const MODERATE = 'GHSA-gggg-hhhh-jjjj';
const future = '2999-12-31';

test('when the report has no advisories, then it passes', async (t) => {
  const r = await run(report([]));
  t.is(r.code, 0, r.out + r.err);
  t.regex(r.out, /0 advisories/);
  t.regex(r.out, /^OK/m);
});

test('when a high advisory is not allowed, then it fails with exit 1 and names it in the table', async (t) => {
  const r = await run(
    report([
      ['lib-a', HIGH, 'high'],
      ['lib-b', MODERATE, 'moderate'],
    ]),
  );
  t.is(r.code, 1, r.out + r.err);
  t.regex(r.out, new RegExp(`high\\s+${HIGH}\\s+lib-a\\s+<2\\.0\\.0\\s+yes\\s+FAIL`));
  t.regex(r.out, new RegExp(`moderate\\s+${MODERATE}\\s+lib-b.*reported \\(below high\\)`));
  t.regex(r.out, /FAIL: 1 high\/critical advisory not allowed/);
});

test('when every high or critical advisory is allowed until a future date, then it passes and says so', async (t) => {
  const r = await run(
    report([
      ['lib-a', HIGH, 'high'],
      ['lib-c', CRITICAL, 'critical'],
    ]),
    {
      allow: [
        { id: HIGH, reason: 'only reachable through the dev server', until: future },
        { id: CRITICAL, reason: 'we never parse untrusted YAML', until: future },
      ],
    },
  );
  t.is(r.code, 0, r.out + r.err);
  t.regex(r.out, new RegExp(`${CRITICAL}.*allowed until ${future}: we never parse untrusted YAML`));
  t.regex(r.out, /allowed by .*: GHSA-dddd-eeee-ffff, GHSA-aaaa-bbbb-cccc/);
});

test('when the allow-list entry has expired, then the advisory fails again', async (t) => {
  const r = await run(report([['lib-c', CRITICAL, 'critical']]), {
    allow: [{ id: CRITICAL, reason: 'reviewed last year, must be reviewed again', until: '2000-01-01' }],
  });
  t.is(r.code, 1, r.out + r.err);
  t.regex(r.out, /FAIL \(allow-list entry expired 2000-01-01\)/);
});

test('when an allow-list entry matches nothing, then it is reported as no longer needed', async (t) => {
  const r = await run(report([]), {
    allow: [{ id: HIGH, reason: 'fixed upstream since, kept by mistake', until: future }],
  });
  t.is(r.code, 0);
  t.regex(r.out, new RegExp(`no longer needed.*${HIGH}`));
});

test('when the allow-list is malformed, then the audit cannot run (exit 2) and says what is wrong', async (t) => {
  const cases: unknown[] = [
    '{ not json',
    { allowed: [] },
    { allow: [{ id: 'CVE-2024-1', reason: 'x', until: 'soon' }] },
  ];
  for (const allow of cases) {
    const r = await run(report([]), allow);
    t.is(r.code, 2, JSON.stringify(allow));
    t.regex(r.err, /allow-list/);
  }
});

test('when npm could not reach the registry, then it fails with exit 2 and a clear message, never a pass', async (t) => {
  const offline = {
    error: {
      code: 'ENOTFOUND',
      summary:
        'request to https://registry.npmjs.org/-/npm/v1/security/advisories/bulk failed, reason: getaddrinfo ENOTFOUND registry.npmjs.org',
      detail: '',
    },
  };
  const refused = {
    message: '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk',
    statusCode: 405,
    error: { summary: '', detail: '' },
  };
  for (const body of [offline, refused, '']) {
    const r = await run(body);
    t.is(r.code, 2, JSON.stringify(body));
    t.regex(r.err, /audit: npm audit (failed|printed no JSON report)/);
    t.notRegex(r.out, /^OK/m);
  }
  t.regex((await run(offline)).err, /did NOT run: this is not a pass/);
});
