/**
 * The health's first import (main.ts): starts tracing before MongoDB and ioredis load, which is why
 * it imports nothing but the tracing entry of common. Off, at no cost, unless
 * OTEL_EXPORTER_OTLP_ENDPOINT is set. Then continuous profiling, off (nothing loaded) unless
 * PYROSCOPE_SERVER_ADDRESS is set.
 */
import { instrumentProcess, instrumentProfiling } from '#common/telemetry';

export const tracing = instrumentProcess({
  serviceName: 'health',
  endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT,
});

export const profiling = await instrumentProfiling({
  service: 'health',
  serverAddress: process.env.PYROSCOPE_SERVER_ADDRESS,
});
