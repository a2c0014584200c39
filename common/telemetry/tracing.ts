import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT_CONTEXT, context, propagation, type Context } from '@opentelemetry/api';

/** What {@link startTracing} started. */
export interface Tracing {
  readonly enabled: boolean;
  /**
   * Exports the spans still buffered and stops; resolves within `timeoutMs` (default 2000) even when
   * the collector does not answer, so a shutdown stays bounded. A no-op when tracing is off.
   */
  shutdown(timeoutMs?: number): Promise<void>;
}

export interface TracingOptions {
  /** The `service.name` of every span this process exports. */
  readonly serviceName: string;
  /**
   * OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT, e.g. `http://collector:4318`); spans go to
   * `<endpoint>/v1/traces`. Unset or empty: tracing is off and no SDK module is loaded.
   */
  readonly endpoint: string | undefined;
  /** The process serves HTTP through Koa (the api): add spans for its middleware and routes. */
  readonly koa?: boolean;
}

const OFF: Tracing = Object.freeze({ enabled: false, shutdown: async () => undefined });

// Probes and scrapes run every few seconds and say nothing about orders: no trace for them.
const UNTRACED_PATHS = /^\/(metrics|health)(\/|\?|$)/;

/**
 * Starts OpenTelemetry tracing (NodeSDK, OTLP/HTTP exporter; spans for HTTP, Koa, MongoDB and Redis
 * calls) when `endpoint` is set; otherwise does nothing and costs nothing: the `@opentelemetry/api`
 * calls elsewhere stay no-ops. Call it before the instrumented packages load (see `<service>/instrument.ts`).
 *
 * The SDK is loaded with `require`, synchronously, for two reasons: an ES module that awaited it would
 * let the modules imported after it run first, and the instrumentations hook `require` (these packages
 * are CommonJS). The SDK keeps process-wide state by design (the global tracer provider, context
 * manager and propagator of `@opentelemetry/api`); that is the only global this sets.
 */
export function startTracing(options: TracingOptions): Tracing {
  if (!options.endpoint) return OFF;
  const tracesUrl = otlpTracesUrl(options.endpoint);
  const require = createRequire(import.meta.url);
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { OTLPTraceExporter } =
    require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
  const { HttpInstrumentation } =
    require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { KoaInstrumentation } =
    require('@opentelemetry/instrumentation-koa') as typeof import('@opentelemetry/instrumentation-koa');
  const { MongoDBInstrumentation } =
    require('@opentelemetry/instrumentation-mongodb') as typeof import('@opentelemetry/instrumentation-mongodb');
  const { IORedisInstrumentation } =
    require('@opentelemetry/instrumentation-ioredis') as typeof import('@opentelemetry/instrumentation-ioredis');

  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    traceExporter: new OTLPTraceExporter({ url: tracesUrl }),
    // Traces only: metrics are Prometheus' (/metrics) and logs are stdout's. Without these the SDK
    // would also export metrics and logs by OTLP, its default.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.test(req.url ?? '') }),
      ...(options.koa ? [new KoaInstrumentation()] : []),
      // Only inside a request or a job: the worker's queue polling and the health probes would
      // otherwise each start a trace of their own.
      new MongoDBInstrumentation({ requireParentSpan: true }),
      new IORedisInstrumentation({ requireParentSpan: true }),
    ],
  });
  sdk.start();
  // An ES module `import`ing a CommonJS package loads it without `require`, out of the hook's sight.
  // Loading Koa and ioredis once through `require` here lets the instrumentations patch their
  // prototypes in place; the processes' later `import`s get those same, patched, modules. ioredis
  // needs this since BullMQ 6: it only `require`s ioredis lazily, when given connection options, and
  // every process here hands it the client `createRedisConnection` made from its own `import`. (MongoDB
  // is `require`d by mongoose, so the hook sees it.)
  require('ioredis');
  if (options.koa) require('koa');
  return {
    enabled: true,
    shutdown: (timeoutMs = 2000) =>
      Promise.race([sdk.shutdown().catch(() => undefined), sleep(timeoutMs, undefined, { ref: false })]),
  };
}

/** `<endpoint>/v1/traces`, as the OTLP spec derives it from OTEL_EXPORTER_OTLP_ENDPOINT. */
function otlpTracesUrl(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    url = new URL('invalid:');
  }
  // The value may hold credentials: the message names the variable, not the value.
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error('OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL (the OTLP/HTTP base)');
  }
  return `${url.href.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * The active trace context as W3C headers (`traceparent`, `tracestate`), to carry in a job's data;
 * undefined when there is none (no span active, or tracing off).
 */
export function injectTraceContext(): Record<string, string> | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return Object.keys(carrier).length > 0 ? carrier : undefined;
}

/**
 * The context a job's `trace` headers describe, to parent the job's span on the span that added it;
 * the empty root context when the job carries none (or tracing is off).
 */
export function extractTraceContext(carrier: Readonly<Record<string, string>> | undefined): Context {
  return carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT;
}

/**
 * What every process's `instrument.ts` (its first import) does: {@link startTracing}, or, when the
 * tracing configuration is wrong, the reason on stderr and exit 78 (EX_CONFIG, as for any bad setting).
 */
export function instrumentProcess(options: TracingOptions): Tracing {
  try {
    return startTracing(options);
  } catch (err) {
    process.stderr.write(`${options.serviceName}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(78);
  }
}

// The other telemetry every process starts from its instrument.ts, through this same entry.
export {
  instrumentProfiling,
  startContinuousProfiling,
  type ContinuousProfiling,
  type ContinuousProfilingOptions,
} from './continuous-profiling.js';
