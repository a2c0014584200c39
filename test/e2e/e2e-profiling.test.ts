import { createHash, randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { freePort } from '../../scripts/lib/embedded-services.js';
import { logEntries, startTestFleet, type Fleet } from '../helpers/fleet.js';

/**
 * Profiling on demand against the real processes: `POST /admin/profile` on the api and on a worker's
 * metrics port records a CPU profile or takes a heap snapshot and returns it as a download; it is refused
 * without an admin key, one at a time per process, bounded in duration and size.
 */

const adminKey = `admin-${randomBytes(16).toString('hex')}`;
const plainKey = `plain-${randomBytes(16).toString('hex')}`;
const sha = (key: string) => createHash('sha256').update(key).digest('hex');

interface Download {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

async function post(url: string, key?: string, method = 'POST'): Promise<Download> {
  const res = await fetch(url, {
    method,
    headers: key ? { authorization: `Bearer ${key}` } : {},
    signal: AbortSignal.timeout(120_000),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const errorCode = (d: Download) => (JSON.parse(d.text) as { error: { code: string } }).error.code;

/** A `.cpuprofile` as V8 writes it: call-tree nodes, samples and the recording's start and end (µs). */
function assertCpuProfile(t: ExecutionContext, d: Download, service: string, seconds: number): void {
  t.is(d.status, 200, d.text.slice(0, 300));
  t.regex(
    d.headers.get('content-disposition') ?? '',
    new RegExp(`^attachment; filename="${service}-\\d+-[\\dT-]+Z\\.cpuprofile"$`),
  );
  const profile = JSON.parse(d.text) as { nodes: unknown[]; samples: number[]; startTime: number; endTime: number };
  t.true(profile.nodes.length > 0, 'the profile has call-tree nodes');
  t.true(Array.isArray(profile.samples));
  // It covered the duration asked (V8 timestamps in microseconds; 5% of slack for timer granularity).
  t.true(
    profile.endTime - profile.startTime >= seconds * 950_000,
    `${profile.endTime - profile.startTime} µs recorded`,
  );
}

async function fleetWithProfiling(t: ExecutionContext): Promise<{ fleet: Fleet; workerUrl: string }> {
  const fleet = await startTestFleet(t, {
    label: 'e2e_profile',
    workers: 0,
    health: false,
    env: { API_KEYS: `ops:${sha(adminKey)}:admin,shop:${sha(plainKey)}`, PROCESSING_DELAY_MS: '0' },
  });
  const port = await freePort();
  // A worker whose bound is far below any heap snapshot of it, and above a short CPU profile.
  await fleet.addWorker({ WORKER_METRICS_PORT: String(port), PROFILE_MAX_MB: '2' });
  return { fleet, workerUrl: `http://127.0.0.1:${port}` };
}

test.serial(
  'when the api and a worker are asked for profiles, then only admins get them, one at a time, within bounds',
  async (t) => {
    const { fleet, workerUrl } = await fleetWithProfiling(t);
    const api = `${fleet.apiUrl}/admin/profile`;
    const worker = `${workerUrl}/admin/profile`;

    // Refused without admin credentials, on both.
    for (const base of [api, worker]) {
      const anonymous = await post(`${base}?kind=cpu&seconds=1`);
      t.is(anonymous.status, 401, `${base}: no key`);
      t.is(errorCode(anonymous), 'UNAUTHORIZED');
      const plain = await post(`${base}?kind=cpu&seconds=1`, plainKey);
      t.is(plain.status, 401, `${base}: a key without admin rights`);
    }

    // Bad requests name what is wrong, on both.
    for (const base of [api, worker]) {
      for (const query of [
        'kind=gpu',
        'kind=cpu&seconds=0',
        'kind=cpu&seconds=61',
        'kind=cpu&seconds=1.5',
        'kind=heap&seconds=5',
        'seconds=5',
      ]) {
        const bad = await post(`${base}?${query}`, adminKey);
        t.is(bad.status, 400, `${base}?${query}: ${bad.text}`);
        t.is(errorCode(bad), 'VALIDATION_ERROR');
      }
    }
    t.is((await post(`${worker}?kind=cpu`, adminKey, 'GET')).status, 405, 'the worker route takes POST only');
    t.is((await post(`${workerUrl}/admin/nothing`, adminKey)).status, 404);

    // A CPU profile of each process.
    assertCpuProfile(t, await post(`${api}?kind=cpu&seconds=1`, adminKey), 'api', 1);
    assertCpuProfile(t, await post(`${worker}?kind=cpu&seconds=1`, adminKey), 'worker', 1);

    // A heap snapshot of the api.
    const heap = await post(`${api}?kind=heap`, adminKey);
    t.is(heap.status, 200, heap.text.slice(0, 300));
    t.regex(heap.headers.get('content-disposition') ?? '', /^attachment; filename="api-\d+-[\dT-]+Z\.heapsnapshot"$/);
    const snapshot = JSON.parse(heap.text) as { snapshot: { node_count: number }; nodes: number[]; strings: string[] };
    t.true(snapshot.snapshot.node_count > 1000, `${snapshot.snapshot.node_count} heap nodes`);
    t.true(snapshot.strings.length > 0);

    // The worker's heap is larger than its PROFILE_MAX_MB (2): 413, and the process goes on serving.
    const tooLarge = await post(`${worker}?kind=heap`, adminKey);
    t.is(tooLarge.status, 413, tooLarge.text.slice(0, 300));
    t.is(errorCode(tooLarge), 'PAYLOAD_TOO_LARGE');
    t.regex(JSON.parse(tooLarge.text).error.message as string, /PROFILE_MAX_MB/);
    t.is((await fetch(`${workerUrl}/metrics`)).status, 200, 'the worker still serves its metrics');

    // Never two at once: of two requests sent together to one process, one records and one gets 409.
    for (const base of [api, worker]) {
      const both = await Promise.all([
        post(`${base}?kind=cpu&seconds=5`, adminKey),
        post(`${base}?kind=cpu&seconds=5`, adminKey),
      ]);
      t.deepEqual(both.map((d) => d.status).sort(), [200, 409], both.map((d) => d.text.slice(0, 200)).join(' | '));
      t.is(errorCode(both.find((d) => d.status === 409)!), 'INVALID_STATE');
    }
    // Once it ended, the next one is served.
    assertCpuProfile(t, await post(`${api}?kind=cpu&seconds=1`, adminKey), 'api', 1);

    // Each recording left a log line naming who asked (never the key).
    const recorded = [
      ...logEntries(fleet.api!, 'profile recorded'),
      ...logEntries(fleet.workers[0], 'profile recorded'),
    ];
    t.true(recorded.length >= 5, `${recorded.length} profile lines`);
    t.true(recorded.every((line) => line.clientId === 'ops'));
    t.false(
      fleet.processes.some((p) => p.lines.some((line) => line.includes(adminKey))),
      'no line holds the key',
    );
  },
);
