import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { createLogContext, createLogger, findOrderById, loadConfig, type Order } from '#common';
import { createWorkerContainer, type WorkerContainer } from '../../worker/container.js';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { stopTestServices } from '../helpers/services.js';

/**
 * The trace of one order crosses the queue: the api's `enqueue` puts the active span's W3C
 * `traceparent` into the job's data and the worker's `process-order` span takes it as its parent.
 * The real api container and the real worker container run in this process against real MongoDB and
 * Redis; an in-memory exporter collects every span (no collector, no OTLP).
 */
const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
// Global tracer provider, AsyncLocalStorage context manager and the W3C trace-context propagator.
provider.register();

let api: TestApi;
let worker: WorkerContainer;
const workerLines: Record<string, unknown>[] = [];

test.before(async () => {
  api = await startTestApi('tracing', { PROCESSING_DELAY_MS: '0' });
  // The worker on the api's database and queue prefix, logging JSON lines into `workerLines`.
  const config = loadConfig({
    MONGO_URL: api.config.mongoUrl,
    REDIS_URL: api.config.redisUrl,
    QUEUE_PREFIX: api.config.queuePrefix,
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    WORKER_METRICS_PORT: '0',
    PROCESSING_DELAY_MS: '0',
    RECONCILE_INTERVAL_MS: '60000',
    RECONCILE_GRACE_MS: '60000',
  });
  const stream = new PassThrough();
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line) workerLines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const logContext = createLogContext();
  const logger = createLogger({ service: 'test', level: 'info', context: logContext, destination: stream });
  worker = createWorkerContainer({ config, logger, logContext, workerId: 'test:tracing' });
  await worker.connect();
  await worker.start();
});

test.after.always(async () => {
  await worker?.close(5000).catch(() => undefined);
  await api?.close();
  await provider.shutdown();
  await stopTestServices();
});

const NEW_ORDER = {
  customerId: 'c-trace',
  items: [{ sku: 'SKU-1', quantity: 1, unitPriceCents: 700 }],
  currency: 'EUR',
};

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function processed(orderId: string): Promise<Order> {
  return waitFor(`order ${orderId} PROCESSED`, async () => {
    const order = await findOrderById(api.container.models.Order, orderId);
    return order?.status === 'PROCESSED' ? order : undefined;
  });
}

function workerSpanOf(orderId: string): Promise<ReadableSpan> {
  return waitFor(`the process-order span of ${orderId}`, () =>
    exporter.getFinishedSpans().find((s) => s.name === 'process-order' && s.attributes['order.id'] === orderId),
  );
}

test.serial(
  "when the api creates an order inside a request span, then the job carries its traceparent and the worker's process-order span is its child",
  async (t) => {
    // Arrange + act: an HTTP-ish server span around the api's real order intake (insert + enqueue).
    const tracer = trace.getTracer('test');
    const { producer, orderId } = await tracer.startActiveSpan(
      'POST /orders',
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'POST', 'http.route': '/orders' } },
      async (span) => {
        const { order } = await api.container.orders.create({
          input: NEW_ORDER,
          scope: 'public',
          correlationId: 'trace-corr-1',
        });
        span.end();
        return { producer: span.spanContext(), orderId: order.id };
      },
    );

    // The job's data carries the producer span's context as a W3C traceparent.
    const job = await api.container.queue.getJob(orderId);
    t.truthy(job, 'the job exists');
    t.regex(job?.data.trace?.traceparent ?? '', new RegExp(`^00-${producer.traceId}-${producer.spanId}-01$`));
    t.is(job?.data.correlationId, 'trace-corr-1');

    // The worker processes it in a span of the same trace, whose parent is the producer span.
    const order = await processed(orderId);
    const span = await workerSpanOf(orderId);
    t.is(span.spanContext().traceId, producer.traceId, 'same trace as the api request');
    t.is(span.parentSpanContext?.spanId, producer.spanId, "the api's span is the parent");
    t.true(span.parentSpanContext?.isRemote, 'the parent came through the job, not through this process');
    t.is(span.kind, SpanKind.CONSUMER);
    t.like(span.attributes, {
      'order.id': orderId,
      'messaging.system': 'bullmq',
      'messaging.message.id': orderId,
      'job.attempt': 1,
      'job.outcome': 'completed',
    });
    t.not(span.status.code, SpanStatusCode.ERROR);

    // The worker's log line of the job names the trace, next to the correlation id.
    const done = workerLines.find((l) => l.msg === 'job done' && l.orderId === orderId);
    t.like(done, { correlationId: 'trace-corr-1', traceId: producer.traceId, outcome: 'completed', attempt: 1 });

    // And the end-to-end histogram observed this order, from createdAt to processedAt.
    const e2e = ((await worker.registry.getSingleMetric('order_end_to_end_seconds')?.get())?.values ?? []) as Array<{
      metricName?: string;
      value: number;
    }>;
    const count = e2e.find((v) => v.metricName === 'order_end_to_end_seconds_count')?.value ?? 0;
    const sum = e2e.find((v) => v.metricName === 'order_end_to_end_seconds_sum')?.value ?? 0;
    t.is(count, 1, 'one order PROCESSED, one observation');
    const expected = ((order.processedAt?.getTime() ?? 0) - order.createdAt.getTime()) / 1000;
    t.true(Math.abs(sum - expected) < 0.001, `observed ${sum} s, order took ${expected} s`);
  },
);

test.serial(
  'when an order is created outside any span, then its job carries no trace and the worker span is a root',
  async (t) => {
    const { order } = await api.container.orders.create({
      input: NEW_ORDER,
      scope: 'public',
      correlationId: 'trace-corr-2',
    });

    const job = await api.container.queue.getJob(order.id);
    t.is(job?.data.trace, undefined, 'no `trace` field in the job data');
    await processed(order.id);
    const span = await workerSpanOf(order.id);
    t.is(span.parentSpanContext, undefined, 'a new trace starts at the worker');
  },
);
