import { createHash } from 'node:crypto';
import test from 'ava';
import { randomOrderId } from '#common';
import { failureDraw } from '../../worker/payments/failure-draw.js';

/** Deterministic ids, so a statistical test that passes once passes every time. */
function fixedIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `ord_${i.toString(16).padStart(32, '0')}`);
}

// --- failureDraw --------------------------------------------------------------------------------

test('when the same id and attempt are drawn twice, then the draw is the same', (t) => {
  for (const id of fixedIds(50)) {
    t.is(failureDraw(id, 1), failureDraw(id, 1));
    t.is(failureDraw(id, 4), failureDraw(id, 4));
  }
});

test('when the attempt or the id changes, then the draw changes', (t) => {
  const [a, b] = fixedIds(2);

  t.not(failureDraw(a, 1), failureDraw(a, 2));
  t.not(failureDraw(a, 1), failureDraw(b, 1));
});

test('when a draw is made, then it is the first 32 bits of sha256(id:attempt) over 2^32', (t) => {
  for (const id of fixedIds(20)) {
    for (const attempt of [1, 2, 3]) {
      const expected = createHash('sha256').update(`${id}:${attempt}`).digest().readUInt32BE(0) / 2 ** 32;

      t.is(failureDraw(id, attempt), expected);
    }
  }
});

test('when 10000 ids are drawn, then every draw is in [0, 1) and the mean is near 0.5', (t) => {
  const draws = fixedIds(10_000).map((id) => failureDraw(id, 1));

  for (const draw of draws) {
    t.true(draw >= 0 && draw < 1, String(draw));
  }
  const mean = draws.reduce((sum, d) => sum + d, 0) / draws.length;
  t.true(mean > 0.45 && mean < 0.55, `mean ${mean}`);
});

test('when 10000 random ids are drawn, then each tenth of [0, 1) gets roughly a tenth of them', (t) => {
  const buckets = Array.from({ length: 10 }, () => 0);

  for (let i = 0; i < 10_000; i += 1) buckets[Math.floor(failureDraw(randomOrderId(), 1) * 10)] += 1;

  // expected 1000 per bucket, sd ≈ 30: 800–1200 is far outside chance.
  for (const [i, count] of buckets.entries()) t.true(count > 800 && count < 1200, `bucket ${i}: ${count}`);
});

// --- createSimulatedStep ------------------------------------------------------------------------
