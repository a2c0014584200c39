import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import type { OrderView } from '#common';
import { orderBody, requestJson, startTestFleet, waitFor } from '../helpers/fleet.js';

/** One span as an OTLP/HTTP JSON export carries it, with the service that sent it. */
interface ExportedSpan {
  readonly service: string;
  readonly scope: string;
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly attributes: Record<string, unknown>;
}

interface OtlpAttribute {
  key: string;
  value: Record<string, unknown>;
}
interface OtlpExport {
  resourceSpans: {
    resource: { attributes: OtlpAttribute[] };
    scopeSpans: {
      scope: { name: string };
      spans: {
        name: string;
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        attributes: OtlpAttribute[];
      }[];
    }[];
  }[];
}

const attributes = (list: OtlpAttribute[]) => Object.fromEntries(list.map((a) => [a.key, Object.values(a.value)[0]]));

/** A stand-in OTLP/HTTP collector on a free port: collects every span posted to /v1/traces. */
async function startCollector() {
  const spans: ExportedSpan[] = [];
  const paths: string[] = [];
  const read = async (req: IncomingMessage) => {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    return body;
  };
  const server = createServer((req, res) => {
    void read(req).then((body) => {
      paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      const data = JSON.parse(body) as OtlpExport;
      for (const rs of data.resourceSpans) {
        const service = String(attributes(rs.resource.attributes)['service.name']);
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) {
            spans.push({
              service,
              scope: ss.scope.name,
              name: s.name,
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId || undefined,
              attributes: attributes(s.attributes),
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, paths, server };
}

test.serial(
  "when OTEL_EXPORTER_OTLP_ENDPOINT is set, then the real api and worker export one trace per order: HTTP, Koa, MongoDB and Redis spans, and the worker's process-order span under the api's",
  async (t) => {
    const collector = await startCollector();
    t.teardown(() => collector.server.close());
    const fleet = await startTestFleet(t, {
      label: 'e2e_traces',
      workers: 1,
      health: false,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        // Export within a fraction of a second instead of the SDK's 5 s batches.
        OTEL_BSP_SCHEDULE_DELAY: '100',
        PROCESSING_DELAY_MS: '0',
      },
    });

    const created = await requestJson<OrderView>(`${fleet.apiUrl}/orders`, {
      method: 'POST',
      body: orderBody(7),
      headers: { 'x-request-id': 'e2e-traces-1' },
    });
    t.is(created.status, 201);
    const orderId = created.body.id;

    const workerSpan = await waitFor(
      'the process-order span',
      async () => collector.spans.find((s) => s.name === 'process-order' && s.attributes['order.id'] === orderId),
      { timeoutMs: 20_000, describe: () => collector.spans.map((s) => `${s.service}:${s.name}`).join(', ') },
    );
    await waitFor('the api request span', async () =>
      collector.spans.find((s) => s.service === 'api' && s.name === 'POST /orders' && !s.parentSpanId),
    );
    const trace = collector.spans.filter((s) => s.traceId === workerSpan.traceId);
    const describe = trace.map((s) => `${s.service} ${s.scope} ${s.name}`).join('\n');
    t.log(describe);

    // Exported by OTLP/HTTP (JSON) to <endpoint>/v1/traces.
    t.true(
      collector.paths.every((p) => p.startsWith('POST /v1/traces application/json')),
      collector.paths.join(),
    );

    // The api's part: the HTTP server span is the root; Koa, MongoDB and Redis spans are in the trace.
    const root = trace.find((s) => s.service === 'api' && s.name === 'POST /orders' && !s.parentSpanId);
    t.truthy(root, `the api's HTTP span roots the trace:\n${describe}`);
    const scopes = new Set(trace.filter((s) => s.service === 'api').map((s) => s.scope));
    for (const scope of ['http', 'koa', 'mongodb', 'ioredis']) {
      t.true(scopes.has(`@opentelemetry/instrumentation-${scope}`), `api spans from ${scope}:\n${describe}`);
    }

    // The worker's part: process-order's parent is a span of the api, and its MongoDB calls are its children.
    t.is(workerSpan.service, 'worker');
    const parent = trace.find((s) => s.spanId === workerSpan.parentSpanId);
    t.is(parent?.service, 'api', `the parent of process-order is an api span:\n${describe}`);
    const workerMongo = trace.filter(
      (s) => s.service === 'worker' && s.scope === '@opentelemetry/instrumentation-mongodb',
    );
    t.true(workerMongo.length >= 2, 'claim, effect and complete are traced');
    t.true(workerMongo.every((s) => s.parentSpanId === workerSpan.spanId));

    // Probes and scrapes are not traced.
    await requestJson(`${fleet.apiUrl}/metrics`);
    await requestJson(`${fleet.apiUrl}/health/ready`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const probeSpans = collector.spans.filter((s) =>
      [s.name, s.attributes['url.path'], s.attributes['http.target']].some((v) => /\/(metrics|health)/.test(String(v))),
    );
    t.deepEqual(probeSpans, [], 'no span for /metrics or /health');
  },
);
