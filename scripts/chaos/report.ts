import type { ScenarioResult } from './types.js';

const dash = '-';

function cell(value: number | string | undefined): string {
  return value === undefined ? dash : String(value);
}

function secondsCell(ms: number | undefined): string {
  return ms === undefined ? dash : `${(ms / 1000).toFixed(1)} s`;
}

/** Lays rows out as a table with a header rule; every cell is one line. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The summary: one row per scenario with the figures every scenario shares, and PASS/FAIL. */
export function summaryTable(results: readonly ScenarioResult[]): string {
  return table(
    ['#', 'scenario', 'accepted', 'lost', 'dup effects', 'p99', 'recover', '5xx', 'exit codes', 'result'],
    results.map((r) => [
      String(r.id),
      r.title,
      cell(r.summary.accepted),
      cell(r.summary.lost),
      cell(r.summary.duplicateEffects),
      r.summary.p99Ms === undefined ? dash : `${r.summary.p99Ms} ms`,
      secondsCell(r.summary.recoverMs),
      cell(r.summary.fiveXx),
      cell(r.summary.exitCodes),
      r.pass ? 'PASS' : 'FAIL',
    ]),
  );
}

/** One scenario in full: fault, pass line, every figure and every check with what was measured. */
export function scenarioDetail(r: ScenarioResult): string {
  const lines = [
    `#${r.id} ${r.title}: ${r.pass ? 'PASS' : 'FAIL'} (${(r.durationMs / 1000).toFixed(1)} s${r.mongo ? `, ${r.mongo}` : ''})`,
    `   fault:     ${r.fault}`,
    `   pass line: ${r.passLine}`,
  ];
  if (r.figures.length > 0) {
    const width = Math.max(...r.figures.map(([name]) => name.length));
    lines.push('   figures:');
    for (const [name, value] of r.figures) lines.push(`     ${name.padEnd(width)}  ${value}`);
  }
  if (r.checks.length > 0) {
    const width = Math.max(...r.checks.map((c) => c.name.length));
    lines.push('   checks:');
    for (const c of r.checks) lines.push(`     ${c.pass ? 'PASS' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.actual}`);
  }
  if (r.error) lines.push(`   error: ${r.error.split('\n').slice(0, 6).join('\n          ')}`);
  if (r.evidence.length > 0) {
    lines.push('   evidence:');
    for (const e of r.evidence.slice(0, 30)) lines.push(`     ${e.length > 400 ? `${e.slice(0, 400)}…` : e}`);
  }
  return lines.join('\n');
}

/** The whole report: summary table, then each scenario in full, then the verdict. */
export function fullReport(results: readonly ScenarioResult[]): string {
  const failed = results.filter((r) => !r.pass);
  return [
    summaryTable(results),
    '',
    ...results.map((r) => `${scenarioDetail(r)}\n`),
    failed.length === 0
      ? `ALL ${results.length} SCENARIOS PASS`
      : `${failed.length} OF ${results.length} SCENARIOS FAIL: ${failed.map((r) => `#${r.id}`).join(', ')}`,
  ].join('\n');
}
