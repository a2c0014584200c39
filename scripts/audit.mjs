#!/usr/bin/env node
/**
 * CI gate on known vulnerabilities in production dependencies.
 *
 * Runs `npm audit --omit=dev --json`, prints every advisory found, and fails on any high or critical
 * advisory that is not listed in `.ci/audit-allowlist.json`:
 *
 *   { "allow": [ { "id": "GHSA-xxxx-xxxx-xxxx", "reason": "why it does not affect us", "until": "YYYY-MM-DD" } ] }
 *
 * An entry counts only until its `until` date (UTC, inclusive), so every exception gets reviewed again.
 *
 * Exit status: 0 nothing blocking · 1 a high/critical advisory not allowed · 2 the audit could not run
 * (registry unreachable or refusing the audit endpoint, npm missing, unreadable allow-list).
 *
 * Options: --report <file> reads a saved `npm audit --json` output instead of asking the registry;
 * --allowlist <file> uses another allow-list.
 *
 * Plain Node ESM: runs without a build (`npm run audit`).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const EXIT = Object.freeze({ ok: 0, blocked: 1, cannotAudit: 2 });
const BLOCKING = new Set(['critical', 'high']);
const SEVERITIES = ['critical', 'high', 'moderate', 'low', 'info'];
const AUDIT_TIMEOUT_MS = 120_000;
const GHSA = /^GHSA(-[0-9a-z]{4}){3}$/;

class CannotAudit extends Error {}

function parseArgs(argv) {
  const options = { report: undefined, allowlist: path.join(ROOT, '.ci', 'audit-allowlist.json') };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if ((arg === '--report' || arg === '--allowlist') && argv[i + 1]) {
      options[arg.slice(2)] = path.resolve(argv[(i += 1)]);
    } else {
      throw new CannotAudit(`unknown argument ${arg} (usage: audit.mjs [--report file] [--allowlist file])`);
    }
  }
  return options;
}

/** stdout of `npm audit --omit=dev --json` (npm exits 1 when it finds anything; that is not a failure here). */
function runNpmAudit() {
  return new Promise((resolve, reject) => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const child = spawn(npm, ['audit', '--omit=dev', '--json'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: process.platform === 'win32',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(
        new CannotAudit(`npm audit did not finish within ${AUDIT_TIMEOUT_MS / 1000} s (is the registry reachable?)`),
      );
    }, AUDIT_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new CannotAudit(`could not run npm: ${err.message}`));
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ stdout, stderr });
    });
  });
}

/** The report, or a CannotAudit that says why the registry gave none. */
function parseReport(stdout, stderr = '') {
  let report;
  try {
    report = JSON.parse(stdout);
  } catch {
    const hint = stderr
      .split('\n')
      .filter((l) => /npm (error|ERR!)|audit/i.test(l) && !/Unknown (user|project) config/.test(l))
      .slice(0, 5)
      .join('\n  ');
    throw new CannotAudit(`npm audit printed no JSON report${hint ? `:\n  ${hint}` : ''}`);
  }
  if (report && typeof report === 'object' && report.vulnerabilities && report.metadata) return report;
  // npm's error shapes: { error: { code, summary, detail } } (offline, ENOLOCK…) or the registry's
  // HTTP answer { message, statusCode, uri, error } (e.g. a mirror that refuses the audit endpoint).
  const e = report?.error ?? {};
  const reason = [report?.message, e.code, e.summary, e.detail].filter(Boolean).join(' — ') || 'no report';
  const registryHint =
    report?.statusCode || /ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|ECONNRESET|network|fetch/i.test(reason)
      ? '\n  The npm registry (or a proxy or mirror in between) did not answer the audit request.' +
        '\n  The audit did NOT run: this is not a pass. Retry with network access to a registry that serves' +
        '\n  POST /-/npm/v1/security/advisories/bulk (a mirror or proxy that allows only GET cannot).'
      : '';
  throw new CannotAudit(`npm audit failed: ${reason}${registryHint}`);
}

/** One row per (advisory, vulnerable package), from npm's v2 report (`vulnerabilities[*].via[]`). */
function advisoriesOf(report) {
  const rows = new Map();
  for (const vuln of Object.values(report.vulnerabilities)) {
    for (const via of vuln.via ?? []) {
      if (!via || typeof via !== 'object') continue; // a string names another package's entry
      const id = /GHSA(-[0-9a-z]{4}){3}/i.exec(via.url ?? '')?.[0] ?? `npm:${via.source}`;
      const key = `${id} ${via.name}`;
      if (rows.has(key)) continue;
      const fix = report.vulnerabilities[via.name]?.fixAvailable;
      rows.set(key, {
        id,
        severity: String(via.severity ?? vuln.severity ?? 'info').toLowerCase(),
        pkg: via.name ?? vuln.name,
        range: via.range ?? vuln.range ?? '',
        title: via.title ?? '',
        url: via.url ?? '',
        fix:
          fix === true
            ? 'yes'
            : fix && typeof fix === 'object'
              ? `${fix.name}@${fix.version}${fix.isSemVerMajor ? ' (major)' : ''}`
              : 'no',
      });
    }
  }
  return [...rows.values()].sort(
    (a, b) => SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity) || a.id.localeCompare(b.id),
  );
}

async function loadAllowlist(file) {
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT') return { entries: [], note: `no allow-list at ${path.relative(ROOT, file)}` };
    throw new CannotAudit(`cannot read the allow-list ${file}: ${err.message}`);
  }
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CannotAudit(`the allow-list ${file} is not valid JSON: ${err.message}`);
  }
  if (!parsed || !Array.isArray(parsed.allow)) {
    throw new CannotAudit(`the allow-list ${file} must be { "allow": [ { "id", "reason", "until" } ] }`);
  }
  const problems = [];
  parsed.allow.forEach((entry, i) => {
    const where = `allow[${i}]`;
    if (!entry || typeof entry !== 'object') return problems.push(`${where} is not an object`);
    if (typeof entry.id !== 'string' || !GHSA.test(entry.id))
      problems.push(`${where}.id must be a GHSA-xxxx-xxxx-xxxx id`);
    if (typeof entry.reason !== 'string' || entry.reason.trim().length < 10) {
      problems.push(`${where}.reason must say why the advisory does not apply (10+ characters)`);
    }
    const until = typeof entry.until === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(entry.until) ? entry.until : '';
    if (!until || Number.isNaN(Date.parse(`${until}T00:00:00Z`)))
      problems.push(`${where}.until must be a date YYYY-MM-DD`);
    return undefined;
  });
  if (problems.length > 0) throw new CannotAudit(`the allow-list ${file} is invalid:\n  - ${problems.join('\n  - ')}`);
  return { entries: parsed.allow, note: '' };
}

function table(rows, columns) {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells) =>
    cells
      .map((cell, i) => String(cell ?? '').padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => r[c])))].join('\n');
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const { entries, note } = await loadAllowlist(options.allowlist);
  const today = new Date().toISOString().slice(0, 10);
  const active = new Map(entries.filter((e) => e.until >= today).map((e) => [e.id.toLowerCase(), e]));
  const expired = new Map(entries.filter((e) => e.until < today).map((e) => [e.id.toLowerCase(), e]));

  const source = options.report ? `report ${path.relative(ROOT, options.report)}` : 'npm audit --omit=dev';
  let report;
  if (options.report) {
    const text = await readFile(options.report, 'utf8').catch((err) => Promise.reject(new CannotAudit(err.message)));
    report = parseReport(text);
  } else {
    const { stdout, stderr } = await runNpmAudit();
    report = parseReport(stdout, stderr);
  }

  const rows = advisoriesOf(report).map((a) => {
    const allowed = active.get(a.id.toLowerCase());
    let status;
    if (!BLOCKING.has(a.severity)) status = 'reported (below high)';
    else if (allowed) status = `allowed until ${allowed.until}: ${allowed.reason}`;
    else if (expired.has(a.id.toLowerCase()))
      status = `FAIL (allow-list entry expired ${expired.get(a.id.toLowerCase()).until})`;
    else status = 'FAIL';
    return { ...a, vulnerable: a.range, advisory: a.id, package: a.pkg, status, blocking: status.startsWith('FAIL') };
  });

  const counts = report.metadata.vulnerabilities ?? {};
  const deps = report.metadata.dependencies?.prod ?? report.metadata.dependencies?.total ?? '?';
  const summary =
    SEVERITIES.filter((s) => counts[s])
      .map((s) => `${counts[s]} ${s}`)
      .join(', ') || 'none';
  process.stdout.write(`${source}: ${rows.length} advisories (${summary}) in ${deps} production dependencies\n`);
  if (note) process.stdout.write(`${note}; nothing is allowed\n`);
  if (rows.length > 0) {
    process.stdout.write(`\n${table(rows, ['severity', 'advisory', 'package', 'vulnerable', 'fix', 'status'])}\n`);
    for (const r of rows.filter((x) => x.url)) process.stdout.write(`  ${r.advisory}: ${r.title} <${r.url}>\n`);
  }
  const found = new Set(rows.map((r) => r.advisory.toLowerCase()));
  const unused = entries.filter((e) => !found.has(e.id.toLowerCase()));
  if (unused.length > 0) {
    process.stdout.write(
      `\nallow-list entries no longer needed (remove them): ${unused.map((e) => e.id).join(', ')}\n`,
    );
  }
  const allowedRows = rows.filter((r) => r.status.startsWith('allowed'));
  if (allowedRows.length > 0) {
    process.stdout.write(
      `\nallowed by ${path.relative(ROOT, options.allowlist)}: ${allowedRows.map((r) => r.advisory).join(', ')}\n`,
    );
  }
  const blocking = rows.filter((r) => r.blocking);
  if (blocking.length > 0) {
    process.stdout.write(
      `\nFAIL: ${blocking.length} high/critical advisor${blocking.length === 1 ? 'y' : 'ies'} not allowed. ` +
        'Upgrade the package (npm audit fix, or an override), or review it and add it to ' +
        `${path.relative(ROOT, options.allowlist)} with a reason and an expiry date.\n`,
    );
    return EXIT.blocked;
  }
  process.stdout.write('\nOK: no high or critical advisory outside the allow-list\n');
  return EXIT.ok;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`audit: ${err instanceof CannotAudit ? err.message : (err?.stack ?? String(err))}\n`);
    process.exitCode = EXIT.cannotAudit;
  },
);
