/**
 * The api's first import (main.ts): starts tracing before Koa, MongoDB and ioredis load, which is why
 * it imports nothing but the tracing entry of common. Off, at no cost, unless
 * OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
import { startTracing, type Tracing } from '#common/telemetry';

function start(): Tracing {
  try {
    return startTracing({ serviceName: 'api', endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT, koa: true });
  } catch (err) {
    process.stderr.write(`api: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(78);
  }
}

export const tracing = start();
