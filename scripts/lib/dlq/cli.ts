import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import {
  createDlqClient,
  DlqCliError,
  type BulkResult,
  type DlqClient,
  type DlqPage,
  type DeadNotification,
  type ReplayRequest,
  type ReplayResult,
} from './client.js';

export const USAGE = `usage: npm run dlq -- <command>

  list [--limit N]                         the dead (FAILED) orders, newest failure first (default 20)
  reprocess <orderId> [--reason TEXT]      bring one dead order back: PENDING, a fresh series of attempts
  reprocess --all [--reason TEXT] [--batch N]
                                           bring every dead order back, N per request (default 100)
  list --queue notifications [--limit N]   the undeliverable webhooks (newest failure first, at most 100)
  reprocess <webhookId> --queue notifications
                                           deliver one again: same webhook-id, a fresh series of attempts
  reprocess --all --queue notifications    deliver every undeliverable webhook again

  reprocess [--queue Q] FILTER... [--dry-run] [--batch N] [--reason TEXT]
                                           replay only the dead letters that match every filter:
      --customer ID                          the order's customer
      --failed-reason TEXT                   a case-insensitive substring of the failure (an error code…)
      --failed-from ISO, --failed-to ISO     failed at or after / before these times
    --dry-run counts what would be replayed and lists a sample, changing nothing; otherwise the
    matches are replayed N per request (default 100, at most 1000) with a progress bar.

  --operator NAME   who is replaying (recorded in each order's history as \`by\` and in the api's log;
                    default DLQ_OPERATOR, else the API key's client id)

environment:
  API_URL        the api (default http://127.0.0.1:3000)
  API_KEY        an admin API key, sent as Authorization: Bearer (needed when the api has API_KEYS)
  DLQ_OPERATOR   the default --operator`;

/** The most ids one POST /dlq/reprocess takes (the api's REPROCESS_MAX_IDS). */
const MAX_BATCH = 1000;
const PAGE = 100;
const REASON_WIDTH = 60;

export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

class UsageError extends Error {}

/** Runs one command; resolves with the exit code (0 done, 1 failed). Never throws. */
export async function runDlqCli(argv: readonly string[], io: CliIo): Promise<number> {
  const out = (line = '') => io.stdout.write(`${line}\n`);
  const err = (line = '') => io.stderr.write(`${line}\n`);
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: {
        limit: { type: 'string' },
        reason: { type: 'string' },
        all: { type: 'boolean', default: false },
        batch: { type: 'string' },
        queue: { type: 'string', default: 'orders' },
        customer: { type: 'string' },
        'failed-reason': { type: 'string' },
        'failed-from': { type: 'string' },
        'failed-to': { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        operator: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: true,
      strict: true,
    });
    const [command, ...rest] = positionals;
    if (values.help || command === 'help') {
      out(USAGE);
      return 0;
    }
    if (values.queue !== 'orders' && values.queue !== 'notifications') {
      throw new UsageError(`--queue takes orders or notifications, got '${values.queue}'`);
    }
    const client = createDlqClient({ baseUrl: apiUrl(io.env), apiKey: io.env.API_KEY || undefined });
    const operator = values.operator ?? (io.env.DLQ_OPERATOR || undefined);
    const filter = {
      customerId: values.customer,
      failedReason: values['failed-reason'],
      failedFrom: isoTime(values['failed-from'], '--failed-from'),
      failedTo: isoTime(values['failed-to'], '--failed-to'),
    };
    const filtered = Object.values(filter).some((v) => v !== undefined) || values['dry-run'];
    if (filtered) {
      if (command !== 'reprocess') throw new UsageError('the filters and --dry-run go with reprocess');
      if (rest.length > 0) throw new UsageError('give either an id or filters, not both');
      if (values.limit !== undefined) throw new UsageError('reprocess takes no --limit (use --batch)');
      const batch = positiveInt(values.batch ?? '100', '--batch', MAX_BATCH);
      const request: ReplayRequest = { queue: values.queue, ...filter, operator, reason: values.reason };
      return await replayFiltered(client, request, { batch, dryRun: values['dry-run'] }, io, out, err);
    }
    if (values.queue === 'notifications')
      return await notificationsCommand(client, command, rest, { ...values, operator }, out);
    if (command === 'list') {
      if (rest.length > 0 || values.all || values.reason !== undefined || values.batch !== undefined) {
        throw new UsageError('list takes only --limit');
      }
      await list(client, positiveInt(values.limit ?? '20', '--limit', 10_000), out);
      return 0;
    }
    if (command === 'reprocess') {
      if (values.limit !== undefined) throw new UsageError('reprocess takes no --limit');
      if (values.all) {
        if (rest.length > 0) throw new UsageError('give either an order id or --all, not both');
        const batch = positiveInt(values.batch ?? '100', '--batch', MAX_BATCH);
        return await reprocessAll(client, { reason: values.reason, operator, batch }, io, out, err);
      }
      if (values.batch !== undefined) throw new UsageError('--batch goes with --all');
      if (rest.length !== 1) throw new UsageError('reprocess takes one order id, or --all');
      await reprocessOne(client, rest[0], values.reason, operator, out);
      return 0;
    }
    throw new UsageError(command ? `unknown command '${command}'` : 'a command is required');
  } catch (error) {
    if (error instanceof DlqCliError) {
      err(`dlq: ${error.message}`);
      if (error.hint) err(`  → ${error.hint}`);
    } else if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`dlq: ${(error as Error).message}`);
      err();
      err(USAGE);
    } else {
      err(`dlq: unexpected error: ${(error as Error).stack ?? String(error)}`);
    }
    return 1;
  }
}

function apiUrl(env: NodeJS.ProcessEnv): string {
  const raw = env.API_URL || 'http://127.0.0.1:3000';
  try {
    const url = new URL(raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
    return raw;
  } catch {
    throw new DlqCliError(`API_URL is not an http(s) URL`, 'set API_URL like http://127.0.0.1:3000');
  }
}

/** An ISO 8601 time as the api takes it, or a usage error naming the option. */
function isoTime(raw: string | undefined, name: string): string | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(raw) || Number.isNaN(Date.parse(raw))) {
    throw new UsageError(`${name} takes an ISO 8601 time like 2026-11-22T08:00:00Z, got '${raw}'`);
  }
  return raw;
}

function positiveInt(raw: string, name: string, max: number): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw new UsageError(`${name} takes a whole number from 1 to ${max}, got '${raw}'`);
  }
  return Number(raw);
}

/** One line, printable: control characters (a terminal escape in a job's error…) become spaces. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]+/g, ' ').trim();
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** `2026-11-22T00:51:28Z`: seconds are enough to tell failures apart on a screen. */
function shortTime(iso: string | null): string {
  return iso ? iso.replace(/\.\d+Z$/, 'Z') : '-';
}

/** Plain-text table: columns padded to their widest cell, the last one left ragged. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

async function list(client: DlqClient, limit: number, out: (line?: string) => void): Promise<void> {
  const items: DlqPage['items'][number][] = [];
  let cursor: string | null = null;
  let more = false;
  do {
    const page: DlqPage = await client.list(Math.min(PAGE, limit - items.length), cursor);
    items.push(...page.items);
    cursor = page.nextCursor;
    more = cursor !== null;
  } while (more && items.length < limit);
  if (items.length === 0) {
    out('No dead orders.');
    return;
  }
  const rows = items.map(({ order, job }) => [
    order.id,
    shortTime(order.failedAt),
    String(order.attempts),
    truncate(printable(job?.failedReason ?? order.lastError ?? '(no reason recorded)'), REASON_WIDTH),
  ]);
  out(formatTable(['ORDER ID', 'FAILED AT', 'ATTEMPTS', 'FAILED REASON'], rows));
  out();
  out(
    more
      ? `${items.length} dead orders shown; more are dead: npm run dlq -- list --limit ${Math.min(limit * 5, 10_000)}`
      : `${items.length} dead order${items.length === 1 ? '' : 's'}.`,
  );
  out('Bring them back: npm run dlq -- reprocess <orderId> | npm run dlq -- reprocess --all');
}

async function reprocessOne(
  client: DlqClient,
  orderId: string,
  reason: string | undefined,
  operator: string | undefined,
  out: (line?: string) => void,
): Promise<void> {
  const order = await client.reprocess(orderId, reason, operator);
  const entry = order.history.findLast((h) => h.reason?.startsWith('reprocess requested'));
  out(`${order.id} is ${order.status}: its job is queued again with a fresh series of attempts.`);
  if (entry?.reason) out(`history: ${printable(entry.reason)}`);
}

async function reprocessAll(
  client: DlqClient,
  options: { readonly reason?: string; readonly operator?: string; readonly batch: number },
  io: CliIo,
  out: (line?: string) => void,
  err: (line?: string) => void,
): Promise<number> {
  // Walk the whole list first (keyset pages stay valid while orders leave it), so the bar has a total.
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page: DlqPage = await client.list(PAGE, cursor);
    ids.push(...page.items.map((i) => i.order.id));
    cursor = page.nextCursor;
  } while (cursor);
  if (ids.length === 0) {
    out('No dead orders; nothing to reprocess.');
    return 0;
  }
  err(`${ids.length} dead order${ids.length === 1 ? '' : 's'} found; reprocessing ${options.batch} per request`);

  const bar = progressBar(io, 'orders');
  const { totals, add } = tally();
  bar.start(ids.length, 0);
  let done = 0;
  try {
    for (let i = 0; i < ids.length; i += options.batch) {
      const batch = ids.slice(i, i + options.batch);
      add(await client.reprocessMany(batch, options.reason, options.operator));
      done += batch.length;
      bar.update(done);
    }
  } catch (error) {
    bar.stop();
    err(`stopped after ${done} of ${ids.length}: ${summary(totals)}`);
    throw error;
  }
  bar.stop();
  out(summary(totals));
  if (totals.skipped > 0) out('skipped: no longer dead (already brought back, or cancelled) when their turn came');
  return 0;
}

/** The replay's progress on stderr (stdout keeps the summary): a bar on a terminal, a line a second in a pipe. */
function progressBar(io: CliIo, unit: string): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    {
      stream: io.stderr,
      format: `reprocess |{bar}| {percentage}% {value}/{total} ${unit}`,
      barsize: 30,
      hideCursor: true,
      // In CI or a pipe: a plain line per second, and the last one at the end.
      noTTYOutput: true,
      notTTYSchedule: 1000,
    },
    cliProgress.Presets.shades_classic,
  );
}

/** Running totals of bulk answers. */
function tally() {
  const totals: BulkResult = { reprocessed: 0, skipped: 0, notFound: 0 };
  const add = (r: BulkResult) =>
    Object.assign(totals, {
      reprocessed: totals.reprocessed + r.reprocessed,
      skipped: totals.skipped + r.skipped,
      notFound: totals.notFound + r.notFound,
    });
  return { totals, add };
}

/**
 * A filtered replay: a dry run first (its count is the bar's total, or with --dry-run the answer),
 * then bounded requests of `batch` until nothing matches, the total is reached (a letter that fails
 * again meanwhile is not chased for ever), or a request replays nothing.
 */
async function replayFiltered(
  client: DlqClient,
  request: ReplayRequest,
  options: { readonly batch: number; readonly dryRun: boolean },
  io: CliIo,
  out: (line?: string) => void,
  err: (line?: string) => void,
): Promise<number> {
  const unit = request.queue === 'notifications' ? 'webhooks' : 'orders';
  const preview = await client.replay({ ...request, dryRun: true, limit: options.batch });
  if (!preview.dryRun) throw new DlqCliError('the api did not answer the dry run as one', 'is API_URL the orders api?');
  if (options.dryRun) {
    out(`dry run: ${preview.matched} dead ${unit} match; nothing was changed.`);
    if (preview.sample.length > 0) {
      out();
      const rows = preview.sample.map((c) => [
        c.id,
        c.customerId ?? '-',
        shortTime(c.failedAt),
        truncate(printable(c.failedReason ?? '(no reason recorded)'), REASON_WIDTH),
      ]);
      out(formatTable(['ID', 'CUSTOMER', 'FAILED AT', 'FAILED REASON'], rows));
      if (preview.matched > preview.sample.length) out(`(${preview.sample.length} of ${preview.matched} shown)`);
    }
    return 0;
  }
  if (preview.matched === 0) {
    out(`No dead ${unit} match; nothing to reprocess.`);
    return 0;
  }
  err(`${preview.matched} dead ${unit} match; reprocessing ${options.batch} per request`);
  const bar = progressBar(io, unit);
  const { totals, add } = tally();
  let remaining = preview.matched;
  bar.start(preview.matched, 0);
  try {
    let done = 0;
    while (remaining > 0 && done < preview.matched) {
      const result: ReplayResult = await client.replay({ ...request, dryRun: false, limit: options.batch });
      if (result.dryRun) throw new DlqCliError('the api answered a replay as a dry run', 'is API_URL the orders api?');
      add(result);
      const moved = result.reprocessed + result.skipped + result.notFound;
      done += moved;
      remaining = result.remaining;
      bar.update(Math.min(done, preview.matched));
      if (moved === 0) break;
    }
  } catch (error) {
    bar.stop();
    err(`stopped: ${summary(totals)}`);
    throw error;
  }
  bar.stop();
  out(summary(totals));
  if (remaining > 0) out(`${remaining} still match (they failed again meanwhile, or could not be replayed); run again`);
  return 0;
}

/** The `--queue notifications` commands: the webhooks' dead letters, in one request each. */
async function notificationsCommand(
  client: DlqClient,
  command: string | undefined,
  rest: readonly string[],
  values: {
    readonly limit?: string;
    readonly reason?: string;
    readonly all?: boolean;
    readonly batch?: string;
    readonly operator?: string;
  },
  out: (line?: string) => void,
): Promise<number> {
  if (values.reason !== undefined || values.batch !== undefined) {
    throw new UsageError('--reason and --batch go with the orders queue');
  }
  if (command === 'list') {
    if (rest.length > 0 || values.all) throw new UsageError('list takes only --limit');
    const page = await client.listNotifications(positiveInt(values.limit ?? '20', '--limit', 100));
    if (page.items.length === 0) {
      out('No undeliverable webhooks.');
      return 0;
    }
    const rows = page.items.map((n: DeadNotification) => [
      n.id,
      n.type ?? '-',
      shortTime(n.finishedOn === null ? null : new Date(n.finishedOn).toISOString()),
      String(n.attemptsMade),
      truncate(printable(n.failedReason ?? '(no reason recorded)'), REASON_WIDTH),
    ]);
    out(formatTable(['WEBHOOK ID', 'TYPE', 'FAILED AT', 'ATTEMPTS', 'FAILED REASON'], rows));
    out();
    out(`${page.items.length} of ${page.total} undeliverable webhook${page.total === 1 ? '' : 's'} shown.`);
    out(
      'Deliver again: npm run dlq -- reprocess <webhookId> --queue notifications | reprocess --all --queue notifications',
    );
    return 0;
  }
  if (command === 'reprocess') {
    if (values.limit !== undefined) throw new UsageError('reprocess takes no --limit');
    if (values.all) {
      if (rest.length > 0) throw new UsageError('give either a webhook id or --all, not both');
      out(summary(await client.reprocessAllNotifications(values.operator)));
      return 0;
    }
    if (rest.length !== 1) throw new UsageError('reprocess takes one webhook id, or --all');
    const job = await client.reprocessNotification(rest[0], values.operator);
    out(`${job.id} (${job.type ?? 'event'}) is queued again with a fresh series of attempts, same webhook-id.`);
    return 0;
  }
  throw new UsageError(command ? `unknown command '${command}'` : 'a command is required');
}

function summary(totals: BulkResult): string {
  return `reprocessed ${totals.reprocessed}, skipped ${totals.skipped}, not found ${totals.notFound}`;
}
