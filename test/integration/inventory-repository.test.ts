import { isDeepStrictEqual } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import type { Model } from 'mongoose';
import { ensureInventoryIndexes, randomOrderId, registerInventoryModel, type InventoryDocument } from '#common';
import { createInventoryRepository, type InventoryRepository } from '../../api/repositories/inventory-repository.js';
import { createWorkerInventoryRepository } from '../../worker/repositories/inventory-repository.js';
import type { InventoryPort } from '../../worker/saga/ports.js';
import { observedCollection, openTestMongo, type TestMongo } from '../helpers/mongo.js';

/**
 * The inventory repository (docs/design.md, "The order workflow": `reserve` and `confirm`) against the real
 * MongoDB wire connection. Concurrency is real: the calls of one test go out at once over the driver's
 * connection pool and the server applies them in whatever order they arrive.
 */

type Item = { readonly sku: string; readonly quantity: number };
type ReserveResult = Awaited<ReturnType<InventoryPort['reserve']>>;

// One database for this file; every test uses SKUs of its own, so the tests can run concurrently.
let db: TestMongo;
let Inventory: Model<InventoryDocument>;
let stock: InventoryRepository;
let inventory: InventoryPort;
let skuCounter = 0;

test.before(async () => {
  db = await openTestMongo('inventory_repository');
  Inventory = registerInventoryModel(db.connection);
  await ensureInventoryIndexes(Inventory);
  stock = createInventoryRepository({ Inventory });
  inventory = createWorkerInventoryRepository({ Inventory });
});

test.after.always(async () => {
  await db?.close();
});

/** SKU names no other test (or property run) uses. */
function freshSkus(label: string, n: number): string[] {
  skuCounter += 1;
  return Array.from({ length: n }, (_, i) => `${label}-${skuCounter}-${i}`);
}

/** The stored documents of `skus` (missing ones left out), by SKU. */
async function stored(skus: readonly string[]): Promise<Map<string, InventoryDocument>> {
  const docs = (await Inventory.collection
    .find({ _id: { $in: skus } } as never)
    .toArray()) as unknown as InventoryDocument[];
  return new Map(docs.map((d) => [d._id, d]));
}

/** What `orderId` holds, per SKU, across `skus`. */
function holdsOf(docs: Map<string, InventoryDocument>, orderId: string): Record<string, number> {
  const held: Record<string, number> = {};
  for (const [sku, doc] of docs) {
    for (const hold of doc.holds) if (hold.orderId === orderId) held[sku] = (held[sku] ?? 0) + hold.quantity;
  }
  return held;
}

/** The order's quantities per SKU, counting only the tracked SKUs. */
function wanted(items: readonly Item[], tracked: ReadonlySet<string>): Record<string, number> {
  const want: Record<string, number> = {};
  for (const { sku, quantity } of items) if (tracked.has(sku)) want[sku] = (want[sku] ?? 0) + quantity;
  return want;
}

/**
 * The invariants every SKU keeps at every moment: integer counts ≥ 0, `reserved` = the sum of the
 * holds, one hold per order, and `available + reserved + sold` = the stock that was set. Returns
 * the problems found (empty when none), so a property can report them.
 */
function invariantProblems(docs: Map<string, InventoryDocument>, totals: Record<string, number>): string[] {
  const problems: string[] = [];
  for (const [sku, total] of Object.entries(totals)) {
    const doc = docs.get(sku);
    if (!doc) {
      problems.push(`${sku}: document missing`);
      continue;
    }
    for (const field of ['available', 'reserved', 'sold'] as const) {
      if (!Number.isInteger(doc[field]) || doc[field] < 0) problems.push(`${sku}: ${field} is ${doc[field]}`);
    }
    const held = doc.holds.reduce((sum, h) => sum + h.quantity, 0);
    if (held !== doc.reserved) problems.push(`${sku}: reserved ${doc.reserved} but holds sum to ${held}`);
    const orders = doc.holds.map((h) => h.orderId);
    if (new Set(orders).size !== orders.length) problems.push(`${sku}: an order holds it twice`);
    const sum = doc.available + doc.reserved + doc.sold;
    if (sum !== total) problems.push(`${sku}: available+reserved+sold = ${sum}, stock set ${total}`);
  }
  return problems;
}

function assertInvariants(t: ExecutionContext, docs: Map<string, InventoryDocument>, totals: Record<string, number>) {
  t.deepEqual(invariantProblems(docs, totals), []);
}

async function setStock(totals: Record<string, number>): Promise<void> {
  await Promise.all(Object.entries(totals).map(([sku, n]) => stock.setAvailable(sku, n)));
}

/** A small deterministic generator, so the big concurrency test is the same mix on every run. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

test('when 80 one-unit orders race for a SKU with 50 in stock, then exactly 50 are reserved and 30 are out of stock', async (t) => {
  const [sku] = freshSkus('race', 1);
  await setStock({ [sku]: 50 });
  const ids = Array.from({ length: 80 }, () => randomOrderId());

  const results = await Promise.all(ids.map((id) => inventory.reserve(id, [{ sku, quantity: 1 }])));

  t.is(results.filter((r) => r.outcome === 'reserved').length, 50);
  t.deepEqual(
    results.filter((r) => r.outcome === 'out_of_stock'),
    Array.from({ length: 30 }, () => ({ outcome: 'out_of_stock', sku })),
  );
  await Promise.all(ids.map((id) => inventory.commit(id, [{ sku, quantity: 1 }])));
  const doc = (await stored([sku])).get(sku);
  t.like(doc, { available: 0, reserved: 0, sold: 50, holds: [] });
});

test('when 300 orders over 3 SKUs with limited stock reserve at once, then nothing is oversold and every count balances', async (t) => {
  const skus = freshSkus('mix', 3);
  const totals = { [skus[0]]: 60, [skus[1]]: 35, [skus[2]]: 90 };
  await setStock(totals);
  const tracked = new Set(skus);
  const random = lcg(13);
  const orders = Array.from({ length: 300 }, () => {
    const items: Item[] = [];
    const count = 1 + Math.floor(random() * 3);
    for (let i = 0; i < count; i += 1) {
      items.push({ sku: skus[Math.floor(random() * 3)], quantity: 1 + Math.floor(random() * 3) });
    }
    return { id: randomOrderId(), items };
  });

  const started = performance.now();
  const results = await Promise.all(orders.map((o) => inventory.reserve(o.id, o.items)));
  const ms = performance.now() - started;

  const reserved = orders.filter((_, i) => results[i].outcome === 'reserved');
  t.log(
    `300 concurrent reserves in ${ms.toFixed(0)} ms: ${reserved.length} reserved, ${orders.length - reserved.length} out of stock`,
  );
  const short = orders.filter((_, i) => results[i].outcome === 'out_of_stock');
  // The demand (about 600 units) is far over the 185 in stock: both outcomes must occur.
  t.true(reserved.length > 0, 'some orders were reserved');
  t.true(short.length > 0, 'some orders were out of stock');
  let docs = await stored(skus);
  assertInvariants(t, docs, totals);
  // Each order that was answered `reserved` holds exactly its items; each short one holds nothing.
  for (const order of reserved) t.deepEqual(holdsOf(docs, order.id), wanted(order.items, tracked), order.id);
  for (const order of short) t.deepEqual(holdsOf(docs, order.id), {}, order.id);
  for (const [i, order] of orders.entries()) {
    const result = results[i];
    if (result.outcome === 'out_of_stock') t.true(order.items.some((item) => item.sku === result.sku));
  }
  const expectedReserved = Object.fromEntries(skus.map((s) => [s, 0]));
  for (const order of reserved) {
    for (const [sku, q] of Object.entries(wanted(order.items, tracked))) expectedReserved[sku] += q;
  }
  for (const sku of skus) t.is(docs.get(sku)?.reserved, expectedReserved[sku], sku);

  // Settle: two of three reserved orders are sold, the rest released (and the short ones released
  // again, as a compensation that finds nothing would).
  const committed = reserved.filter((_, i) => i % 3 !== 2);
  await Promise.all([
    ...committed.map((o) => inventory.commit(o.id, o.items)),
    ...reserved.filter((_, i) => i % 3 === 2).map((o) => inventory.release(o.id, o.items)),
    ...short.map((o) => inventory.release(o.id, o.items)),
  ]);

  docs = await stored(skus);
  assertInvariants(t, docs, totals);
  const expectedSold = Object.fromEntries(skus.map((s) => [s, 0]));
  for (const order of committed) {
    for (const [sku, q] of Object.entries(wanted(order.items, tracked))) expectedSold[sku] += q;
  }
  for (const sku of skus) {
    const doc = docs.get(sku);
    t.like(doc, { reserved: 0, sold: expectedSold[sku], holds: [] }, sku);
    t.true((doc?.sold ?? Infinity) <= totals[sku], `${sku}: sold within the stock set`);
  }
});

test('when a multi-item order is short on its last item, then it holds nothing afterwards', async (t) => {
  const [a, b, c] = freshSkus('short', 3);
  const totals = { [a]: 10, [b]: 10, [c]: 4 };
  await setStock(totals);
  const id = randomOrderId();

  const result = await inventory.reserve(id, [
    { sku: a, quantity: 2 },
    { sku: b, quantity: 3 },
    { sku: c, quantity: 5 },
  ]);

  t.deepEqual(result, { outcome: 'out_of_stock', sku: c });
  const docs = await stored([a, b, c]);
  t.deepEqual(holdsOf(docs, id), {});
  t.like(docs.get(a), { available: 10, reserved: 0, sold: 0 });
  t.like(docs.get(b), { available: 10, reserved: 0, sold: 0 });
  t.like(docs.get(c), { available: 4, reserved: 0, sold: 0 });
});

test('when an earlier crashed call left part of an order held and a retry finds an item short, then everything the order holds is released', async (t) => {
  const [a, b] = freshSkus('crashed', 2);
  await setStock({ [a]: 5, [b]: 1 });
  const id = randomOrderId();
  // The first attempt took `a` and died before it got to `b`.
  t.deepEqual(await inventory.reserve(id, [{ sku: a, quantity: 2 }]), { outcome: 'reserved' });
  await stock.setAvailable(b, 0);

  const result = await inventory.reserve(id, [
    { sku: a, quantity: 2 },
    { sku: b, quantity: 1 },
  ]);

  t.deepEqual(result, { outcome: 'out_of_stock', sku: b });
  const docs = await stored([a, b]);
  t.deepEqual(holdsOf(docs, id), {});
  t.like(docs.get(a), { available: 5, reserved: 0 });
});

test('when reserve, commit and release are repeated for an order, then each takes effect once', async (t) => {
  const [a, b] = freshSkus('repeat', 2);
  const totals = { [a]: 10, [b]: 10 };
  await setStock(totals);
  const sold = randomOrderId();
  const released = randomOrderId();
  const items = [
    { sku: a, quantity: 3 },
    { sku: b, quantity: 1 },
  ];

  // Sequential repeats, as a retry after a crash would make them.
  t.deepEqual(await inventory.reserve(sold, items), { outcome: 'reserved' });
  t.deepEqual(await inventory.reserve(sold, items), { outcome: 'reserved' });
  t.like((await stored([a])).get(a), { available: 7, reserved: 3, sold: 0 });
  await inventory.commit(sold, items);
  await inventory.commit(sold, items);
  // A release after the sale (a compensation that comes late) finds no hold: the sale stands.
  await inventory.release(sold, items);
  // Concurrent repeats, as a stalled attempt and its successor would make them.
  const reserves = await Promise.all(Array.from({ length: 20 }, () => inventory.reserve(released, items)));
  t.true(reserves.every((r) => r.outcome === 'reserved'));
  let docs = await stored([a, b]);
  t.deepEqual(holdsOf(docs, released), { [a]: 3, [b]: 1 });
  await Promise.all(Array.from({ length: 10 }, () => inventory.release(released, items)));

  docs = await stored([a, b]);
  assertInvariants(t, docs, totals);
  t.like(docs.get(a), { available: 7, reserved: 0, sold: 3, holds: [] });
  t.like(docs.get(b), { available: 9, reserved: 0, sold: 1, holds: [] });
});

test('when a commit and a release of one order race, then exactly one of them takes the reservation', async (t) => {
  const [a] = freshSkus('settle-race', 1);
  await setStock({ [a]: 100 });
  const ids = Array.from({ length: 30 }, () => randomOrderId());
  await Promise.all(ids.map((id) => inventory.reserve(id, [{ sku: a, quantity: 2 }])));

  await Promise.all(
    ids.flatMap((id) => [
      inventory.commit(id, [{ sku: a, quantity: 2 }]),
      inventory.release(id, [{ sku: a, quantity: 2 }]),
      inventory.commit(id, [{ sku: a, quantity: 2 }]),
    ]),
  );

  const doc = (await stored([a])).get(a);
  assertInvariants(t, await stored([a]), { [a]: 100 });
  t.like(doc, { reserved: 0, holds: [] });
  // Every order went one way or the other, whole: sold and returned stock are both in units of 2.
  t.is((doc?.sold ?? 1) % 2, 0);
  t.is((doc?.sold ?? 0) + (doc?.available ?? 0), 100);
});

test('when commit or release is called with other quantities than were reserved, then the held quantity moves', async (t) => {
  const [a, b] = freshSkus('held-qty', 2);
  await setStock({ [a]: 10, [b]: 10 });
  const x = randomOrderId();
  const y = randomOrderId();
  await inventory.reserve(x, [{ sku: a, quantity: 4 }]);
  await inventory.reserve(y, [{ sku: b, quantity: 4 }]);

  await inventory.commit(x, [{ sku: a, quantity: 1 }]);
  await inventory.release(y, [{ sku: b, quantity: 9 }]);

  const docs = await stored([a, b]);
  t.like(docs.get(a), { available: 6, reserved: 0, sold: 4 });
  t.like(docs.get(b), { available: 10, reserved: 0, sold: 0 });
});

test('when an order lists one SKU twice, then it holds their sum once', async (t) => {
  const [a] = freshSkus('twice', 1);
  await setStock({ [a]: 6 });
  const ok = randomOrderId();
  const tooMany = randomOrderId();

  t.deepEqual(
    await inventory.reserve(ok, [
      { sku: a, quantity: 2 },
      { sku: a, quantity: 3 },
    ]),
    { outcome: 'reserved' },
  );
  t.deepEqual(
    await inventory.reserve(tooMany, [
      { sku: a, quantity: 1 },
      { sku: a, quantity: 1 },
    ]),
    { outcome: 'out_of_stock', sku: a },
  );

  const doc = (await stored([a])).get(a);
  t.like(doc, { available: 1, reserved: 5, holds: [{ orderId: ok, quantity: 5 }] });
});

test('when an order names untracked SKUs, then they are skipped: nothing counted, no document made', async (t) => {
  const [tracked, untracked] = freshSkus('untracked', 2);
  await setStock({ [tracked]: 3 });
  const mixed = randomOrderId();
  const onlyUntracked = randomOrderId();
  const items = [
    { sku: untracked, quantity: 500 },
    { sku: tracked, quantity: 2 },
  ];

  t.deepEqual(await inventory.reserve(mixed, items), { outcome: 'reserved' });
  t.deepEqual(await inventory.reserve(onlyUntracked, [{ sku: untracked, quantity: 10_000 }]), {
    outcome: 'reserved',
  });
  await inventory.commit(mixed, items);
  await inventory.commit(onlyUntracked, [{ sku: untracked, quantity: 10_000 }]);
  await inventory.release(onlyUntracked, [{ sku: untracked, quantity: 10_000 }]);

  const docs = await stored([tracked, untracked]);
  t.false(docs.has(untracked));
  t.like(docs.get(tracked), { available: 1, reserved: 0, sold: 2, holds: [] });
});

test('when the stock is set while orders hold and buy it, then available is what was set and nothing else moves', async (t) => {
  const [a] = freshSkus('restock', 1);
  await setStock({ [a]: 5 });
  const held = randomOrderId();
  const bought = randomOrderId();
  await inventory.reserve(held, [{ sku: a, quantity: 2 }]);
  await inventory.reserve(bought, [{ sku: a, quantity: 1 }]);
  await inventory.commit(bought, [{ sku: a, quantity: 1 }]);

  const level = await stock.setAvailable(a, 40);

  t.deepEqual(level, { sku: a, available: 40, reserved: 2, sold: 1 });
  t.deepEqual(await stock.find(a), level);
  t.is(await stock.find(`${a}-never`), null);
  // The reservation made before the change is still released into the new stock.
  await inventory.release(held, [{ sku: a, quantity: 2 }]);
  t.like((await stored([a])).get(a), { available: 42, reserved: 0, sold: 1 });
});

test('when an item has a quantity that is not a positive integer, then reserve refuses it before touching stock', async (t) => {
  const [a] = freshSkus('bad-qty', 1);
  await setStock({ [a]: 5 });

  for (const quantity of [0, -1, 1.5, Number.NaN]) {
    await t.throwsAsync(() => inventory.reserve(randomOrderId(), [{ sku: a, quantity }]), { instanceOf: RangeError });
  }
  t.like((await stored([a])).get(a), { available: 5, reserved: 0, holds: [] });
});

/*
 * The property: random order mixes over three tracked SKUs and one untracked, each order running a
 * saga-like script (reserve, then commit or release or nothing; some are released and reserved again,
 * as a reprocessed dead order is), every call of the script possibly repeated by concurrent copies (a
 * stalled attempt and its successor, or a retry after a crash). The scripts advance in random batches
 * whose calls run at once. After every batch: the invariants hold, `sold` is exactly what the orders
 * held when they were committed (no order sold twice, nothing sold that was not held), an order answered
 * `reserved` by a lone call holds all its tracked items and one answered `out_of_stock` holds none;
 * after everything is settled, `reserved` is back to 0.
 */
type Step = 'reserve' | 'commit' | 'release';

const orderArb = fc.record({
  items: fc.array(fc.record({ sku: fc.integer({ min: 0, max: 3 }), quantity: fc.integer({ min: 1, max: 4 }) }), {
    minLength: 1,
    maxLength: 3,
  }),
  reprocessed: fc.boolean(),
  end: fc.constantFrom<Step | 'none'>('commit', 'commit', 'release', 'none'),
  copies: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 4, maxLength: 4 }),
});

const mixArb = fc.record({
  stock: fc.array(fc.integer({ min: 0, max: 10 }), { minLength: 3, maxLength: 3 }),
  orders: fc.array(orderArb, { minLength: 1, maxLength: 10 }),
  batches: fc.array(fc.uniqueArray(fc.nat({ max: 9 }), { minLength: 1, maxLength: 5 }), { maxLength: 40 }),
});

test('when random order mixes run reserve, commit and release in random concurrent interleavings, then the invariants hold at every step', async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(mixArb, async (mix) => {
      runs += 1;
      const skus = freshSkus('prop', 4);
      const tracked = new Set(skus.slice(0, 3));
      const totals = Object.fromEntries(skus.slice(0, 3).map((s, i) => [s, mix.stock[i]]));
      await setStock(totals);
      const orders = mix.orders.map((o) => {
        const script: Step[] = o.reprocessed ? ['reserve', 'release', 'reserve'] : ['reserve'];
        if (o.end !== 'none') script.push(o.end);
        return {
          id: randomOrderId(),
          items: o.items.map((i) => ({ sku: skus[i.sku], quantity: i.quantity })),
          script,
          copies: o.copies,
          next: 0,
        };
      });
      const expectedSold = Object.fromEntries(skus.slice(0, 3).map((s) => [s, 0]));
      const problems: string[] = [];

      const runBatch = async (picked: typeof orders) => {
        const before = await stored(skus);
        const calls = picked.map(async (order) => {
          const step = order.script[order.next];
          const copies = order.copies[order.next];
          order.next += 1;
          // Only the order's own commit moves its holds during this batch, so what it holds now is what it sells.
          if (step === 'commit') {
            for (const [sku, q] of Object.entries(holdsOf(before, order.id))) expectedSold[sku] += q;
          }
          const results = await Promise.all(
            Array.from({ length: copies }, () => inventory[step](order.id, order.items)),
          );
          return { order, step, copies, result: results[0] as ReserveResult | undefined };
        });
        const done = await Promise.all(calls);
        const after = await stored(skus);
        problems.push(...invariantProblems(after, totals));
        if (after.has(skus[3])) problems.push('the untracked SKU got a document');
        for (const sku of tracked) {
          if (after.get(sku)?.sold !== expectedSold[sku]) {
            problems.push(`${sku}: sold ${after.get(sku)?.sold}, orders held ${expectedSold[sku]} when committed`);
          }
        }
        for (const { order, step, copies, result } of done) {
          if (step !== 'reserve' || copies !== 1 || !result) continue;
          const held = holdsOf(after, order.id);
          if (result.outcome === 'reserved') {
            const want = wanted(order.items, tracked);
            if (!isDeepStrictEqual(held, want)) {
              problems.push(
                `${order.id} answered reserved, holds ${JSON.stringify(held)}, wants ${JSON.stringify(want)}`,
              );
            }
          } else {
            if (Object.keys(held).length > 0)
              problems.push(`${order.id} answered out_of_stock but holds ${JSON.stringify(held)}`);
            if (!tracked.has(result.sku)) problems.push(`${order.id} out of stock on ${result.sku}, not tracked`);
          }
        }
      };

      for (const batch of mix.batches) {
        const picked = [...new Set(batch.map((i) => orders[i % orders.length]))].filter(
          (o) => o.next < o.script.length,
        );
        if (picked.length > 0) await runBatch(picked);
      }
      // What the random batches left unfinished runs to its end, all orders at once per round.
      for (;;) {
        const pending = orders.filter((o) => o.next < o.script.length);
        if (pending.length === 0) break;
        await runBatch(pending);
      }
      // Orders left holding (their script ended after reserve) are compensated.
      await Promise.all(orders.map((o) => inventory.release(o.id, o.items)));

      const final = await stored(skus);
      problems.push(...invariantProblems(final, totals));
      for (const sku of tracked) {
        const doc = final.get(sku);
        if (doc?.reserved !== 0 || doc.holds.length !== 0) problems.push(`${sku}: still reserved after settling`);
        if (doc?.sold !== expectedSold[sku]) problems.push(`${sku}: sold ${doc?.sold}, expected ${expectedSold[sku]}`);
      }
      if (problems.length > 0) throw new Error(problems.join('\n'));
    }),
    { numRuns: 30 },
  );
  t.is(runs, 30);
});

test('when an order reserves, then sells on one SKU of two, then `holds` counts its tracked SKUs and the holds it still has', async (t) => {
  const [a, b] = freshSkus('holds', 2);
  await setStock({ [a]: 5, [b]: 5 });
  const orderId = randomOrderId();
  const items = [
    { sku: a, quantity: 1 },
    { sku: b, quantity: 2 },
    { sku: `untracked-${a}`, quantity: 1 },
  ];

  t.deepEqual(await inventory.holds(orderId, items), { tracked: 2, holding: 0 });
  t.deepEqual(await inventory.reserve(orderId, items), { outcome: 'reserved' });
  t.deepEqual(await inventory.holds(orderId, items), { tracked: 2, holding: 2 });
  // A sale cut after its first SKU: one hold sold, one still held.
  await inventory.commit(orderId, [items[0]]);
  t.deepEqual(await inventory.holds(orderId, items), { tracked: 2, holding: 1 });
  await inventory.commit(orderId, items);
  t.deepEqual(await inventory.holds(orderId, items), { tracked: 2, holding: 0 });
  t.deepEqual(await inventory.holds(orderId, [{ sku: `untracked-${b}`, quantity: 1 }]), { tracked: 0, holding: 0 });
});

/**
 * The repository over `Inventory`, counting the commands it sends (each call of the real collection's
 * methods is one round trip to the real server; nothing is faked underneath).
 */
function countingInventory(bulk: boolean) {
  const calls: string[] = [];
  const collection = observedCollection(Inventory.collection, (method) => calls.push(method));
  const port = createWorkerInventoryRepository({
    Inventory: { collection } as unknown as Model<InventoryDocument>,
    bulk,
  });
  return { port, calls };
}

for (const bulk of [true, false]) {
  test(`when a three-SKU order is reserved and sold with bulk ${bulk ? 'on' : 'off'}, then it costs ${bulk ? 'one command per move' : 'one command per SKU'} and the counts are the same`, async (t) => {
    const skus = freshSkus(`bulk-${bulk}`, 3);
    const totals = Object.fromEntries(skus.map((sku) => [sku, 10]));
    await setStock(totals);
    const items = skus.map((sku, i) => ({ sku, quantity: i + 1 }));
    const orderId = randomOrderId();
    const { port, calls } = countingInventory(bulk);

    t.deepEqual(await port.reserve(orderId, items), { outcome: 'reserved' });
    t.deepEqual(calls, bulk ? ['bulkWrite'] : ['updateOne', 'updateOne', 'updateOne']);
    calls.length = 0;
    await port.commit(orderId, items);
    t.deepEqual(calls, bulk ? ['bulkWrite'] : ['updateOne', 'updateOne', 'updateOne']);

    const docs = await stored(skus);
    assertInvariants(t, docs, totals);
    t.deepEqual(
      skus.map((sku) => [docs.get(sku)?.sold, docs.get(sku)?.reserved]),
      [
        [1, 0],
        [2, 0],
        [3, 0],
      ],
    );
  });
}

test('when a bulk reserve finds one SKU short, then the order goes SKU by SKU: out of stock on that SKU and nothing held', async (t) => {
  const [a, b, c] = freshSkus('bulk-short', 3);
  const totals = { [a]: 5, [b]: 1, [c]: 5 };
  await setStock(totals);
  const orderId = randomOrderId();
  const { port, calls } = countingInventory(true);

  const result = await port.reserve(orderId, [
    { sku: a, quantity: 2 },
    { sku: b, quantity: 2 },
    { sku: c, quantity: 2 },
  ]);

  t.deepEqual(result, { outcome: 'out_of_stock', sku: b });
  t.is(calls[0], 'bulkWrite', 'the bulk write went first');
  const docs = await stored([a, b, c]);
  t.deepEqual(holdsOf(docs, orderId), {});
  assertInvariants(t, docs, totals);
});

test('when ten orders reserve and sell at once with bulk on, then their moves share bulk writes; one short order in a batch is out of stock and the others hold', async (t) => {
  const [a, b, scarce] = freshSkus('bulk-shared', 3);
  const totals = { [a]: 100, [b]: 100, [scarce]: 1 };
  await setStock(totals);
  const { port, calls } = countingInventory(true);
  const orders = Array.from({ length: 10 }, () => randomOrderId());
  const itemsOf = (i: number) => [
    { sku: a, quantity: 1 },
    { sku: i === 3 ? scarce : b, quantity: i === 3 ? 2 : 1 },
  ];

  const reserved = await Promise.all(orders.map((orderId, i) => port.reserve(orderId, itemsOf(i))));

  t.deepEqual(
    reserved,
    orders.map((_, i) => (i === 3 ? { outcome: 'out_of_stock', sku: scarce } : { outcome: 'reserved' })),
  );
  const bulkWrites = calls.filter((c) => c === 'bulkWrite').length;
  t.true(bulkWrites < orders.length, `calls: ${calls.join(', ')}`);
  let docs = await stored([a, b, scarce]);
  assertInvariants(t, docs, totals);
  t.deepEqual(holdsOf(docs, orders[3]), {}, 'the short order holds nothing');
  t.deepEqual(holdsOf(docs, orders[0]), { [a]: 1, [b]: 1 });

  calls.length = 0;
  await Promise.all(orders.map((orderId, i) => (i === 3 ? undefined : port.commit(orderId, itemsOf(i)))));
  t.true(calls.length < 9, `one write per order or fewer: ${calls.join(', ')}`);
  docs = await stored([a, b, scarce]);
  assertInvariants(t, docs, totals);
  t.deepEqual([docs.get(a)?.sold, docs.get(b)?.sold, docs.get(a)?.reserved, docs.get(b)?.reserved], [9, 9, 0, 0]);
});
