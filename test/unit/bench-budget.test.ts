import test from 'ava';
import { DEFAULT_SIZES, fitToBudget, leastSecondsLeft } from '../../scripts/bench/rig.js';

test('when the count-based phases still fit in the run budget, then they keep their planned sizes', (t) => {
  const fit = fitToBudget(DEFAULT_SIZES, { leftSeconds: 300, fixedSeconds: 70, countedSeconds: 200 });
  t.is(fit.scale, 1);
  t.is(fit.sizes, DEFAULT_SIZES);
});

test('when a slow host would end the run past its budget, then the orders of the phases after the fleet shrink to what fits, never under half', (t) => {
  const fit = fitToBudget(DEFAULT_SIZES, { leftSeconds: 225, fixedSeconds: 68, countedSeconds: 184 });
  t.true(fit.scale > 0.84 && fit.scale < 0.86, String(fit.scale));
  t.is(fit.sizes.growthOrders, Math.round(DEFAULT_SIZES.growthOrders * fit.scale));
  t.is(fit.sizes.fairFlood, Math.round(DEFAULT_SIZES.fairFlood * fit.scale));
  t.is(fit.sizes.processingOrders, Math.round(DEFAULT_SIZES.processingOrders * fit.scale));
  t.is(fit.sizes.countOrders, Math.round(DEFAULT_SIZES.countOrders * fit.scale));
  t.deepEqual(fit.sizes.growthLevels, DEFAULT_SIZES.growthLevels, 'the stored levels stay (50k is the target)');
  t.is(fit.sizes.manyConnectionsSeconds, DEFAULT_SIZES.manyConnectionsSeconds, 'timed phases do not shrink');

  const late = fitToBudget(DEFAULT_SIZES, { leftSeconds: 60, fixedSeconds: 68, countedSeconds: 184 });
  t.is(late.scale, 0.5);
  t.is(late.sizes.fairFlood, DEFAULT_SIZES.fairFlood / 2);
});

test('when the fleet asks whether its step-down hold fits, then the count-based phases after it count at half, the timed ones in full', (t) => {
  t.is(leastSecondsLeft({ fixedSeconds: 107, countedSeconds: 130 }), 172);
  // What fitToBudget then does with exactly that much left: the count-based phases at half, not less.
  t.is(fitToBudget(DEFAULT_SIZES, { leftSeconds: 172, fixedSeconds: 107, countedSeconds: 130 }).scale, 0.5);
});
