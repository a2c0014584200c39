import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MeasureWindow, WindowLog } from './rig.js';
import { fmt } from './stats.js';

/**
 * Summaries of the V8 CPU profiles (`--cpu-prof`) of a `--profile` run. Each profile is cut to the
 * windows in which its process was measured (start-up and idle time left out) and its time divided
 * by the orders of those windows, so a system process and its bare baseline compare per order.
 */

/** The parts of a .cpuprofile the summary reads. */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  readonly name: string;
  readonly ms: number;
  /** µs per order, when the profile's orders are known. */
  readonly usPerOrder: number | undefined;
  readonly share: number;
}

export interface ProfileSummary {
  /** The process name (file name without .cpuprofile). */
  readonly name: string;
  /** Sampled busy time in the measured windows (all of the profile when none were recorded), ms. */
  readonly busyMs: number;
  readonly orders: number | undefined;
  readonly byCategory: ProfileEntry[];
  /** Self time by package (`koa`, `mongodb`…), project file, or Node internals. */
  readonly byModule: ProfileEntry[];
  readonly bySelf: ProfileEntry[];
  /** Inclusive time of the project's own functions (each counted once per stack). */
  readonly byInclusive: ProfileEntry[];
  /** Time under the deepest project function on the stack, by the module it called into. */
  readonly byCallout: ProfileEntry[];
}

/** `koa`, `@koa/router`, `api/http/request-context.js`, `node:internal`, `(garbage collector)`… */
export function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const packages = [...url.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)];
  if (packages.length > 0) return packages[packages.length - 1][1];
  const dist = /\/dist\/(.+)$/.exec(url);
  if (dist) return dist[1];
  if (url.startsWith('node:internal')) return 'node:internal';
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

const CATEGORIES: readonly [string, RegExp][] = [
  ['MongoDB driver (mongodb, bson)', /^(mongodb|bson|mongodb-connection-string-url|@mongodb-js\/.*)$/],
  ['mongoose (casting, documents, queries)', /^(mongoose|mquery|kareem|sift|mpath)$/],
  [
    'Redis / BullMQ (ioredis, bullmq, msgpackr)',
    /^(ioredis|bullmq|msgpackr|cluster-key-slot|denque|redis-errors|redis-parser|standard-as-callback|cron-parser|node-abort-controller)$/,
  ],
  ['validation (joi)', /^(joi|@hapi\/.*|@sideway\/.*)$/],
  ['metrics (prom-client)', /^(prom-client|tdigest|bintrees)$/],
  [
    'logging (pino)',
    /^(pino|pino-std-serializers|sonic-boom|thread-stream|fast-redact|quick-format-unescaped|atomic-sleep|on-exit-leak-free|safe-stable-stringify)$/,
  ],
  [
    'HTTP framework (koa, router, koa-body…)',
    /^(koa|@koa\/.*|koa-.*|co-body|raw-body|formidable|delegates|type-is|mime-types|mime-db|content-type|content-disposition|accepts|negotiator|http-errors|statuses|on-finished|vary|encodeurl|escape-html|fresh|destroy|depd|cookies|keygrip|http-assert|only|path-to-regexp|media-typer|inflation|qs|iconv-lite|bytes|unpipe|ee-first|@godaddy\/terminus|stoppable)$/,
  ],
  ['project code (api, worker, common)', /^(api|worker|common)\//],
  ['bench baseline code', /^scripts\//],
  ['garbage collector', /^\(garbage collector\)$/],
  ['Node core and native (sockets, streams, promises, crypto)', /^(node:|\(native\)|\(program\))/],
];

function categoryOf(module: string): string {
  for (const [name, re] of CATEGORIES) if (re.test(module)) return name;
  return `other packages (${module})`;
}

function frameName(frame: CpuProfile['nodes'][number]['callFrame']): string {
  const where = moduleOf(frame.url, frame.functionName);
  return `${frame.functionName || '(anonymous)'} ${where}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
}

function top(map: Map<string, number>, busyMs: number, orders: number | undefined, n: number): ProfileEntry[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, ms]) => ({
      name,
      ms,
      usPerOrder: orders ? (ms * 1000) / orders : undefined,
      share: busyMs > 0 ? ms / busyMs : 0,
    }));
}

/**
 * Self time per sampled node, only for samples inside `windows` (wall-clock ms; the profile's clock
 * starts at about `spawnedAt`). Without windows, every sample counts.
 */
function selfTimes(profile: CpuProfile, spawnedAt: number | undefined, windows: readonly MeasureWindow[]) {
  const selfMs = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i += 1) {
    t += profile.timeDeltas[i] ?? 0;
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    if (spawnedAt !== undefined && windows.length > 0) {
      const wall = spawnedAt + (t - profile.startTime) / 1000;
      if (!windows.some((w) => wall >= w.from && wall <= w.to)) continue;
    }
    selfMs.set(profile.samples[i], (selfMs.get(profile.samples[i]) ?? 0) + dt);
  }
  return selfMs;
}

/** Self, inclusive and per-module time of one profile, per order when the orders are known. */
export function summarizeProfile(
  name: string,
  profile: CpuProfile,
  log: { spawnedAt: number; windows: MeasureWindow[] } | undefined,
  n = 25,
): ProfileSummary {
  const windows = log?.windows ?? [];
  const orders = windows.length > 0 ? windows.reduce((s, w) => s + w.orders, 0) : undefined;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = selfTimes(profile, log?.spawnedAt, windows);
  const byModule = new Map<string, number>();
  const byCategory = new Map<string, number>();
  const bySelf = new Map<string, number>();
  let busyMs = 0;
  for (const [id, ms] of selfMs) {
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === '(idle)') continue;
    busyMs += ms;
    const module = moduleOf(node.callFrame.url, node.callFrame.functionName);
    byModule.set(module, (byModule.get(module) ?? 0) + ms);
    byCategory.set(categoryOf(module), (byCategory.get(categoryOf(module)) ?? 0) + ms);
    const fn = frameName(node.callFrame);
    bySelf.set(fn, (bySelf.get(fn) ?? 0) + ms);
  }

  // Each node's self time goes to every distinct project function on its stack (inclusive time),
  // and to "deepest project function → module it called into" (where the project's time goes).
  const isProject = (url: string) => /\/dist\/(api|worker|common)\//.test(url);
  const byInclusive = new Map<string, number>();
  const byCallout = new Map<string, number>();
  const frames: { name: string; module: string; project: boolean }[] = [];
  const onStack: string[] = [];
  const walk = (id: number) => {
    const node = byId.get(id)!;
    const fn = frameName(node.callFrame);
    const project = isProject(node.callFrame.url);
    frames.push({ name: fn, module: moduleOf(node.callFrame.url, node.callFrame.functionName), project });
    const pushed = project && !onStack.includes(fn);
    if (pushed) onStack.push(fn);
    const own = node.callFrame.functionName === '(idle)' ? 0 : (selfMs.get(id) ?? 0);
    if (own > 0) {
      for (const f of onStack) byInclusive.set(f, (byInclusive.get(f) ?? 0) + own);
      const deepest = frames.findLastIndex((f) => f.project);
      if (deepest >= 0) {
        const key = `${frames[deepest].name} → ${frames[deepest + 1]?.module ?? '(itself)'}`;
        byCallout.set(key, (byCallout.get(key) ?? 0) + own);
      }
    }
    for (const child of node.children ?? []) walk(child);
    frames.pop();
    if (pushed) onStack.pop();
  };
  if (profile.nodes[0]) walk(profile.nodes[0].id);
  return {
    name,
    busyMs,
    orders,
    byCategory: top(byCategory, busyMs, orders, n),
    byModule: top(byModule, busyMs, orders, n),
    bySelf: top(bySelf, busyMs, orders, n),
    byInclusive: top(byInclusive, busyMs, orders, n),
    byCallout: top(byCallout, busyMs, orders, n),
  };
}

/** Every .cpuprofile in `dir`, summarised with the measured windows of its process. */
export async function summarizeProfiles(dir: string, windows: WindowLog, n = 25): Promise<ProfileSummary[]> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile')).sort();
  const out: ProfileSummary[] = [];
  for (const file of files) {
    const name = file.replace(/\.cpuprofile$/, '');
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
    out.push(summarizeProfile(name, profile, windows.get(name), n));
  }
  return out;
}

const us = (e: ProfileEntry | undefined) => (e?.usPerOrder === undefined ? 'n/a' : fmt(e.usPerOrder));

/** system vs bare, per category: µs per order each, and the difference (what the system adds). */
export function comparisonMarkdown(system: ProfileSummary, bare: ProfileSummary): string {
  const names = new Set([...system.byCategory, ...bare.byCategory].map((e) => e.name));
  const rows = [...names]
    .map((name) => {
      const s = system.byCategory.find((e) => e.name === name);
      const b = bare.byCategory.find((e) => e.name === name);
      return { name, s, b, delta: (s?.usPerOrder ?? 0) - (b?.usPerOrder ?? 0) };
    })
    .sort((a, b) => b.delta - a.delta);
  const total = (p: ProfileSummary) => (p.orders ? (p.busyMs * 1000) / p.orders : Number.NaN);
  return [
    `| CPU per order, µs (${system.name} vs ${bare.name}) | system | bare | system − bare |`,
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.name} | ${us(r.s)} | ${us(r.b)} | ${fmt(r.delta)} |`),
    `| **all sampled CPU** | **${fmt(total(system))}** | **${fmt(total(bare))}** | **${fmt(total(system) - total(bare))}** |`,
  ].join('\n');
}

/** The summaries as Markdown: per profile, categories, modules, functions, project call-outs. */
export function profileMarkdown(summaries: readonly ProfileSummary[], n = 15): string {
  const out: string[] = [];
  for (const s of summaries) {
    out.push(
      `### ${s.name}: ${fmt(s.busyMs)} ms busy in the measured windows${s.orders ? `, ${s.orders} orders, ${fmt((s.busyMs * 1000) / s.orders)} µs per order` : ''}`,
      '',
    );
    const table = (title: string, entries: readonly ProfileEntry[]) => {
      out.push(`| ${title} | ms | µs/order | share |`, '| --- | --- | --- | --- |');
      for (const e of entries.slice(0, n)) {
        out.push(`| ${e.name.replace(/\|/g, '\\|')} | ${fmt(e.ms)} | ${us(e)} | ${fmt(e.share * 100, 1)}% |`);
      }
      out.push('');
    };
    table('self time by category', s.byCategory);
    table('self time by module', s.byModule);
    table('self time by function', s.bySelf);
    table('inclusive time, project functions', s.byInclusive);
    table('deepest project function → module it spends in', s.byCallout);
  }
  return out.join('\n');
}
