import test from 'ava';
import type { CountFigures, StepCounts } from '../../scripts/bench/phase-counts.js';
import { NOT_MEASURED, buildRows } from '../../scripts/bench/report.js';

function step(orders: number, mongoCpuUsPerOrder: number | undefined): StepCounts {
  return {
    orders,
    mongo: { insert: orders },
    mongoPerOrder: 1,
    opcounters: {},
    redis: {},
    redisPerOrder: 9,
    scriptsPerOrder: 1,
    mongoCpuUsPerOrder,
  };
}

function counts(system: number | undefined, bare: number | undefined): CountFigures {
  return {
    system: {
      intake: step(100, system),
      replay: step(10, undefined),
      processing: step(100, system),
      redisBytesPerWaitingOrder: 1000,
    },
    bare: { intake: step(100, bare), processing: step(100, bare) },
    raw: { intake: step(100, undefined), processing: step(100, undefined), redisBytesPerWaitingOrder: 400 },
    replayStatuses: {},
  };
}

const serverCpuRows = (figures: CountFigures) =>
  buildRows({ counts: figures }).filter((row) => row.figure.startsWith('MongoDB server CPU per'));

test('when the bench read the MongoDB server CPU on both sides, then its rows give both and their ratio', (t) => {
  const rows = serverCpuRows(counts(600, 200));
  t.is(rows.length, 2);
  for (const row of rows) {
    t.is(row.system, '600');
    t.is(row.baseline, 'bare 200');
    t.is(row.ratio, '3.00×');
    t.is(row.verdict, 'info');
  }
});

test('when the MongoDB server was not the bench’s own, then its CPU rows say "not measured" and no ratio', (t) => {
  for (const row of serverCpuRows(counts(undefined, undefined))) {
    t.is(row.system, NOT_MEASURED);
    t.is(row.baseline, NOT_MEASURED);
    t.is(row.ratio, '—');
  }
  const [oneSide] = serverCpuRows(counts(600, undefined));
  t.is(oneSide.system, '600');
  t.is(oneSide.ratio, '—', 'no ratio against a side that was not measured');
});
