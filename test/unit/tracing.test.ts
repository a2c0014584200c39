import { createRequire } from 'node:module';
import test from 'ava';
import { trace } from '@opentelemetry/api';
import { extractTraceContext, injectTraceContext, startTracing } from '#common';

const require = createRequire(import.meta.url);

/** OpenTelemetry modules beyond the API that this process has loaded (the SDK, exporters, instrumentations). */
function sdkModulesLoaded(): string[] {
  return Object.keys(require.cache).filter((path) => /[\\/]@opentelemetry[\\/](?!api[\\/])[^\\/]+[\\/]/.test(path));
}

test.serial(
  'when OTEL_EXPORTER_OTLP_ENDPOINT is unset or empty, then startTracing does nothing and loads no SDK module',
  async (t) => {
    for (const endpoint of [undefined, '']) {
      const tracing = startTracing({ serviceName: 'api', endpoint, koa: true });
      t.false(tracing.enabled);
      await tracing.shutdown();
    }

    t.deepEqual(sdkModulesLoaded(), [], 'no @opentelemetry package but the API is loaded');
    const span = trace.getTracer('test').startSpan('nothing');
    t.false(span.isRecording(), 'spans stay no-ops');
    span.end();
  },
);

test.serial('when tracing is off, then no trace context is injected into a job and none is extracted', (t) => {
  const span = trace.getTracer('test').startSpan('producer');
  t.is(injectTraceContext(), undefined, 'a job gets no `trace` field');
  span.end();
  const parent = extractTraceContext({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
  t.is(trace.getSpanContext(parent), undefined, 'without a propagator the headers are ignored');
  t.is(trace.getSpanContext(extractTraceContext(undefined)), undefined);
});

test.serial(
  'when the endpoint is not an http(s) URL, then startTracing fails naming the variable, not the value',
  (t) => {
    for (const endpoint of ['grpc://user:s3cret@collector:4317', 'not a url']) {
      const error = t.throws(() => startTracing({ serviceName: 'worker', endpoint }));
      t.regex(error?.message ?? '', /OTEL_EXPORTER_OTLP_ENDPOINT must be an http:\/\/ or https:\/\/ URL/);
      t.false((error?.message ?? '').includes('s3cret'), 'the value is not echoed');
    }
    t.deepEqual(sdkModulesLoaded(), [], 'a bad endpoint is refused before any SDK module loads');
  },
);
