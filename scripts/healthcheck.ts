/**
 * The container image's HEALTHCHECK (`node dist/scripts/healthcheck.js`): exits 0 when the process
 * running as PID 1 answers, 1 when it does not. One image runs api, worker or health, so the check
 * reads which one from PID 1's command line (or takes it as the first argument).
 *
 * Process-level only, like a liveness probe: the api and health processes answer `/health/live`, the
 * worker (no HTTP surface but metrics) answers `/metrics`. A MongoDB or Redis outage must not mark
 * every container unhealthy: readiness (`/health/ready`) and the health process report those.
 *
 * Kept free of `#common` on purpose: it runs every few seconds, and loading mongoose and BullMQ for a
 * single HTTP request would cost more than the check. Ports default as in common/config/config.ts.
 */
import { readFileSync } from 'node:fs';

type Service = 'api' | 'worker' | 'health';

function serviceOfPid1(): Service | undefined {
  try {
    const cmdline = readFileSync('/proc/1/cmdline', 'utf8');
    return /dist\/(api|worker|health)\/main\.js/.exec(cmdline)?.[1] as Service | undefined;
  } catch {
    return undefined;
  }
}

function port(name: string, fallback: number): number {
  const value = Number(process.env[name] || fallback);
  return Number.isInteger(value) ? value : fallback;
}

async function check(service: Service): Promise<string | undefined> {
  let url: string;
  if (service === 'api') url = `http://127.0.0.1:${port('API_PORT', 3000)}/health/live`;
  else if (service === 'health') url = `http://127.0.0.1:${port('HEALTH_PORT', 3001)}/health/live`;
  else {
    const base = port('WORKER_METRICS_PORT', 9464);
    if (base === 0) return undefined; // metrics off: nothing to ask; the container runs while PID 1 does
    url = `http://127.0.0.1:${base + port('NODE_APP_INSTANCE', 0)}/metrics`;
  }
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  await res.arrayBuffer();
  return res.ok ? undefined : `${url} answered ${res.status}`;
}

const arg = process.argv[2];
const service = arg === 'api' || arg === 'worker' || arg === 'health' ? arg : serviceOfPid1();
if (!service) {
  process.stderr.write('healthcheck: cannot tell which service runs (pass api, worker or health)\n');
  process.exit(1);
}
check(service).then(
  (problem) => {
    if (problem) process.stderr.write(`healthcheck: ${problem}\n`);
    process.exit(problem ? 1 : 0);
  },
  (err: unknown) => {
    process.stderr.write(`healthcheck: ${service}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
