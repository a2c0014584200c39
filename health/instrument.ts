/**
 * The health's first import (main.ts): starts tracing before MongoDB and ioredis load, which is why
 * it imports nothing but the tracing entry of common. Off, at no cost, unless
 * OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
import { startTracing, type Tracing } from '#common/telemetry';

function start(): Tracing {
  try {
    return startTracing({ serviceName: 'health', endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT });
  } catch (err) {
    process.stderr.write(`health: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(78);
  }
}

export const tracing = start();
