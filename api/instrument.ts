/**
 * The api's first import (main.ts): starts tracing before Koa, MongoDB and ioredis load, which is why
 * it imports nothing but the tracing entry of common. Off, at no cost, unless
 * OTEL_EXPORTER_OTLP_ENDPOINT is set. Then continuous profiling, off (nothing loaded) unless
 * PYROSCOPE_SERVER_ADDRESS is set.
 */
import { instrumentProcess, instrumentProfiling } from '#common/telemetry';

export const tracing = instrumentProcess({
  serviceName: 'api',
  endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT,
  koa: true,
});

export const profiling = await instrumentProfiling({
  service: 'api',
  serverAddress: process.env.PYROSCOPE_SERVER_ADDRESS,
});
