import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { startTestFleet, waitFor } from '../helpers/fleet.js';

/**
 * Continuous profiling against the real processes: with PYROSCOPE_SERVER_ADDRESS set, the api, a worker
 * and the health process each push gzipped pprof profiles to the server's `/ingest`, named
 * `order-fleet.<service>` and tagged with their service and instance. A stand-in Pyroscope receives them.
 */

interface Ingest {
  readonly name: string;
  readonly format: string | null;
  readonly gzip: boolean;
}

test.serial(
  'when PYROSCOPE_SERVER_ADDRESS is set, then every process pushes its profiles, tagged by service and instance',
  async (t) => {
    const received: Ingest[] = [];
    const pyroscope = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://pyroscope');
        if (req.method === 'POST' && url.pathname === '/ingest') {
          const body = Buffer.concat(chunks);
          received.push({
            name: url.searchParams.get('name') ?? '',
            format: url.searchParams.get('format'),
            gzip: body[0] === 0x1f && body[1] === 0x8b,
          });
        }
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => pyroscope.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => pyroscope.close(() => resolve())));
    const address = `http://127.0.0.1:${(pyroscope.address() as AddressInfo).port}`;

    await startTestFleet(t, {
      label: 'e2e_pyroscope',
      workers: 1,
      // The package's own variable: push every second instead of every minute.
      env: { PYROSCOPE_SERVER_ADDRESS: address, PYROSCOPE_FLUSH_INTERVAL_MS: '1000' },
    });

    const services = ['api', 'worker', 'health'];
    const pushed = (service: string) => received.filter((r) => r.name.startsWith(`order-fleet.${service}{`));
    await waitFor(
      'a profile from each process',
      async () => (services.every((s) => pushed(s).length > 0) ? true : undefined),
      { timeoutMs: 60_000, describe: () => JSON.stringify([...new Set(received.map((r) => r.name))]) },
    );
    for (const service of services) {
      const [first] = pushed(service);
      t.regex(first.name, new RegExp(`[{,]service=${service}[,}]`), `${service}: the service tag`);
      t.regex(first.name, /[{,]instance=[^,}]+:\d+[,}]/, `${service}: the instance tag (<host>:<pid>)`);
      t.is(first.format, 'pprof');
      t.true(first.gzip, `${service}: a gzipped pprof body`);
    }
  },
);
