import { join } from 'node:path';
import test from 'ava';
import { prettyLogLine } from '../../scripts/lib/prefix.js';
import { servicesOf } from '../../scripts/lib/watch.js';

test('when a compiled file changes, then the processes that run it are the ones to restart', (t) => {
  t.deepEqual(servicesOf(join('api', 'http', 'orders-router.js')), ['api']);
  t.deepEqual(servicesOf(join('worker', 'main.js')), ['worker']);
  t.deepEqual(servicesOf(join('health', 'health-snapshot.js')), ['health']);
  t.deepEqual(servicesOf(join('common', 'domain', 'order.js')), ['api', 'worker', 'health']);
});

test('when a source map, a test or a script changes, then no process restarts', (t) => {
  t.deepEqual(servicesOf(join('api', 'main.js.map')), []);
  t.deepEqual(servicesOf(join('test', 'unit', 'x.test.js')), []);
  t.deepEqual(servicesOf(join('scripts', 'dev.js')), []);
});

test('when watch mode prints a JSON log line, then it is pino-pretty text; other lines pass as they are', (t) => {
  const pretty = prettyLogLine({ color: false });
  const line = JSON.stringify({
    level: 30,
    time: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
    service: 'api',
    pid: 7,
    msg: 'hi',
    port: 3000,
  });
  t.regex(pretty(line), /^\[\d\d:\d\d:\d\d\.006\] INFO: hi\n {4}port: 3000$/);
  t.is(pretty('Error: boom'), 'Error: boom');
});
