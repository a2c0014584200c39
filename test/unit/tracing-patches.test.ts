import test from 'ava';
import { startTracing } from '#common';

// A file of its own: starting the SDK sets process-wide state (tracer provider, require hook), and ava
// runs each test file in its own process, so the tests of tracing off stay untouched.

/** shimmer, which the instrumentations wrap with, marks a wrapped function with `__wrapped`. */
const isWrapped = (fn: unknown): boolean => typeof fn === 'function' && '__wrapped' in fn;

test.serial(
  'when tracing starts, then the ioredis and Koa the services import (ES modules) are the instrumented ones',
  async (t) => {
    // Nothing is exported: no span is started, and shutdown is bounded whether or not anything listens.
    const tracing = startTracing({ serviceName: 'api', endpoint: 'http://127.0.0.1:9', koa: true });
    t.teardown(() => tracing.shutdown(500));
    t.true(tracing.enabled);

    // Imported, not required, as common/redis/connection.ts and api/app.ts do. BullMQ 6 no longer
    // requires ioredis itself when given a client, so nothing else would let the hook patch it.
    const { Redis } = await import('ioredis');
    t.true(isWrapped(Redis.prototype.sendCommand), 'every Redis command (BullMQ scripts included) gets a span');
    const { default: Koa } = await import('koa');
    t.true(isWrapped(Koa.prototype.use), 'Koa middleware gets spans');
  },
);
