import { redactUrl } from '#common';

/** A backing service as the banner shows it. */
export interface BackingServiceView {
  readonly url: string;
  readonly embedded: boolean;
  /** The variable that names it when it is not embedded (REDIS_URL, MONGO_URL). */
  readonly variable: string;
  /** What runs when it is embedded (redis-server, mongod). */
  readonly program: string;
}

export interface BannerInput {
  readonly apiPort: number;
  readonly healthPort: number;
  /** Each worker's metrics port, or null when its metrics are off. */
  readonly workers: ReadonlyArray<{ readonly name: string; readonly metricsPort: number | null }>;
  /** `off`: no BULL_BOARD_USER/PASSWORD nor BULL_BOARD_USERS; `missing`: set, but the api does not serve the board. */
  readonly bullBoard: 'off' | 'served' | 'missing';
  readonly redis: BackingServiceView;
  readonly mongo: BackingServiceView;
  /** Where the workers charge orders (the dev payment sandbox, or PAYMENT_PROVIDER_URL). */
  readonly payments?: string;
}

const LOCAL = 'http://127.0.0.1';

/** `redis://127.0.0.1:6379 (REDIS_URL)`, or what was embedded; credentials redacted. */
export function describeBackingService(service: BackingServiceView): string {
  const where = redactUrl(service.url);
  return service.embedded
    ? `${where} (embedded ${service.program}, in memory, stopped on exit)`
    : `${where} (${service.variable})`;
}

/** The "where is everything" lines printed once every process is ready. */
export function formatBanner(input: BannerInput): string[] {
  const api = `${LOCAL}:${input.apiPort}`;
  const health = `${LOCAL}:${input.healthPort}`;
  const width = Math.max('health'.length, ...input.workers.map((w) => w.name.length));
  const metric = (name: string, url: string) => `${name.padEnd(width)}  ${url}`;
  const metrics = [
    metric('api', `${api}/metrics`),
    metric('health', `${health}/metrics`),
    ...input.workers.map((w) =>
      metric(w.name, w.metricsPort === null ? 'off (WORKER_METRICS_PORT=0)' : `${LOCAL}:${w.metricsPort}/metrics`),
    ),
  ];
  const lines = [
    'ready. Ctrl-C stops everything.',
    `  api         ${api}  (POST /orders, GET /orders, GET /openapi.json)`,
    `  health      ${health}/health  (/health/live, /health/ready)`,
    `  metrics     ${metrics[0]}`,
    ...metrics.slice(1).map((m) => `              ${m}`),
  ];
  if (input.bullBoard === 'served')
    lines.push(`  Bull Board  ${api}/admin/queues  (BULL_BOARD_USER / BULL_BOARD_PASSWORD, or BULL_BOARD_USERS)`);
  if (input.bullBoard === 'missing') {
    lines.push('  Bull Board  BULL_BOARD_USER/PASSWORD are set, but this api does not serve /admin/queues');
  }
  if (input.payments) lines.push(`  payments    ${input.payments}`);
  lines.push(`  Redis       ${describeBackingService(input.redis)}`);
  lines.push(`  MongoDB     ${describeBackingService(input.mongo)}`);
  return lines;
}

/** The `port` field of a JSON log line (`api listening on …`, `worker metrics on …`), or undefined. */
export function portFromLogLine(line: string | undefined): number | undefined {
  if (!line) return undefined;
  try {
    const port = (JSON.parse(line) as { port?: unknown }).port;
    return typeof port === 'number' ? port : undefined;
  } catch {
    return undefined;
  }
}

/** True when `url` answers with anything but 404 (a route behind basic auth answers 401). */
export async function isServed(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await response.body?.cancel();
    return response.status !== 404;
  } catch {
    return false;
  }
}
