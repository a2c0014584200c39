import test from 'ava';
import type { Connection, Model } from 'mongoose';
import {
  PUBLIC_SCOPE,
  ensureInventoryIndexes,
  randomOrderId,
  registerInventoryModel,
  type InventoryDocument,
  type OrderDocument,
  type OrderModels,
} from '#common';
import { createInventoryRepository, type InventoryRepository } from '../../api/repositories/inventory-repository.js';
import { createOrderRepository, type OrderRepository } from '../../api/repositories/order-repository.js';
import { createWorkerOrderRepository, type WorkerOrderRepository } from '../../worker/repositories/order-repository.js';
import { createReconcileRepository, type ReconcileRepository } from '../../worker/repositories/reconcile-repository.js';
import { createWorkerInventoryRepository } from '../../worker/repositories/inventory-repository.js';
import type { InventoryPort } from '../../worker/saga/ports.js';
import { storedOrder } from '../helpers/orders.js';
import { openTestMongo, type TestMongo } from '../helpers/mongo.js';

/**
 * Every query the system runs on `orders` is served by an index declared on the Order schema (issue 8,
 * "no scans, every query on an index"). Each query is captured as the code really sends it (mongoose's
 * debug hook on the connection), reduced to its shape (equality fields, range fields, sort), and
 * matched against the declared indexes: the equality fields must lead the index, then the sort and
 * range fields must follow in order. Against a real mongod, explain() must also show an IXSCAN on
 * that index; the MongoDB stand-in's explain is a stub, so there the check says it could not run.
 */

/** The collections whose queries are checked, each with the model that declares its indexes. */
type Collection = 'orders' | 'inventory';

interface Captured {
  readonly collection: Collection;
  readonly method: string;
  readonly filter: Record<string, unknown>;
  readonly sort: Record<string, 1 | -1>;
}

interface Shape {
  readonly equality: string[];
  readonly range: string[];
  readonly sort: [string, 1 | -1][];
}

interface DeclaredIndex {
  readonly name: string;
  readonly keys: [string, 1 | -1][];
}

let mongo: Connection;
let models: OrderModels;
let api: OrderRepository;
let worker: WorkerOrderRepository;
let reconcile: ReconcileRepository;
let Inventory: Model<InventoryDocument>;
let stock: InventoryRepository;
let inventory: InventoryPort;
let captured: Captured[] = [];
let db: TestMongo;
let realMongod = false;
const seeded: Record<'pending' | 'failed' | 'processing', string> = { pending: '', failed: '', processing: '' };

function isOperatorObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || value instanceof Date || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => k.startsWith('$'));
}

/** Equality fields (values, `$eq`, `$in`), range fields (other operators, and every field under `$or`), sort. */
function shapeOf(query: Captured): Shape {
  const equality: string[] = [];
  const range = new Set<string>();
  for (const [field, value] of Object.entries(query.filter)) {
    if (field === '$or') {
      for (const branch of value as Record<string, unknown>[]) for (const f of Object.keys(branch)) range.add(f);
    } else if (isOperatorObject(value) && Object.keys(value).some((op) => op !== '$eq' && op !== '$in')) {
      range.add(field);
    } else {
      equality.push(field);
    }
  }
  return { equality, range: [...range], sort: Object.entries(query.sort) as [string, 1 | -1][] };
}

/**
 * Why `index` cannot serve `shape` (undefined when it can). Equality fields lead the index (any
 * order); `residual` equality fields may stay outside it (checked on the fetched document). The
 * sort's other fields follow in order, all in the index's direction or all reversed; range fields
 * lie within those.
 */
function mismatch(index: DeclaredIndex, shape: Shape, residual: readonly string[]): string | undefined {
  const fields = index.keys.map(([f]) => f);
  let i = 0;
  while (i < fields.length && shape.equality.includes(fields[i])) i += 1;
  if (i === 0) return 'no equality field leads it';
  const uncovered = shape.equality.filter((f) => !fields.slice(0, i).includes(f) && !residual.includes(f));
  if (uncovered.length > 0) return `equality fields ${uncovered.join(', ')} are not in its prefix`;
  const sort = shape.sort.filter(([f]) => !shape.equality.includes(f));
  let direction: 1 | -1 | undefined;
  for (const [j, [field, dir]] of sort.entries()) {
    const key = index.keys[i + j];
    if (!key || key[0] !== field) return `sort field ${field} is not its key ${i + j + 1}`;
    const relative = (dir * key[1]) as 1 | -1;
    if (direction !== undefined && relative !== direction) return `sort on ${field} runs against the other keys`;
    direction = relative;
  }
  const following = fields.slice(i, i + Math.max(sort.length, 1));
  const stray = shape.range.filter((f) => !following.includes(f) && !residual.includes(f));
  if (stray.length > 0) return `range fields ${stray.join(', ')} do not follow the equality prefix`;
  return undefined;
}

const modelOf = (collection: Collection): Model<never> =>
  (collection === 'orders' ? models.Order : Inventory) as unknown as Model<never>;

function declaredIndexes(collection: Collection = 'orders'): DeclaredIndex[] {
  const declared = modelOf(collection)
    .schema.indexes()
    .map(([keys, options]) => ({
      name: String((options as { name?: string }).name),
      keys: Object.entries(keys) as [string, 1 | -1][],
    }));
  return [{ name: '_id_', keys: [['_id', 1]] }, ...declared];
}

/** Finds the first IXSCAN's index name in an explain plan. */
function ixscanIndex(plan: unknown): string | undefined {
  if (!plan || typeof plan !== 'object') return undefined;
  const stage = plan as { stage?: string; indexName?: string; inputStage?: unknown; inputStages?: unknown[] };
  if (stage.stage === 'IXSCAN' || stage.stage === 'IDHACK' || stage.stage === 'EXPRESS_IXSCAN') {
    return stage.indexName ?? '_id_';
  }
  for (const child of [stage.inputStage, ...(stage.inputStages ?? [])]) {
    const found = ixscanIndex(child);
    if (found) return found;
  }
  return undefined;
}

function indexedOrder(status: OrderDocument['status'], overrides: Partial<OrderDocument> = {}): OrderDocument {
  const at = new Date(Date.now() - 60_000);
  return storedOrder(
    status,
    {
      history: [{ status, at }],
      correlationId: 'indexes-test',
      enqueuedAt: null,
      failedAt: status === 'FAILED' ? at : null,
      ...overrides,
    },
    at,
  );
}

test.before(async () => {
  db = await openTestMongo('indexes');
  mongo = db.connection;
  models = db.models;
  api = createOrderRepository({ models });
  worker = createWorkerOrderRepository({ models });
  reconcile = createReconcileRepository({ models });
  Inventory = registerInventoryModel(mongo);
  await ensureInventoryIndexes(Inventory);
  stock = createInventoryRepository({ Inventory });
  inventory = createWorkerInventoryRepository({ Inventory });
  await stock.setAvailable('SKU-indexed', 10);
  const docs = [indexedOrder('PENDING'), indexedOrder('FAILED'), indexedOrder('PROCESSING')];
  [seeded.pending, seeded.failed, seeded.processing] = docs.map((d) => d._id);
  await models.Order.collection.insertMany(docs as never[]);
  const info = await mongo.db!.admin().command({ buildInfo: 1 });
  realMongod = !(typeof info.standin === 'string' || info.gitVersion === 'mongo-standin');
  // Every command mongoose sends to the driver, with its filter and options, as the code builds them.
  mongo.set('debug', (collection: string, method: string, ...args: unknown[]) => {
    if (collection !== 'orders' && collection !== 'inventory') return;
    const [filter, second, third] = args as [
      Record<string, unknown>,
      Record<string, unknown>?,
      Record<string, unknown>?,
    ];
    if (method === 'bulkWrite') {
      // One command, one statement per order: each statement's filter is a query of its own.
      for (const op of args[0] as Record<string, { filter?: Record<string, unknown> }>[]) {
        for (const [kind, statement] of Object.entries(op)) {
          captured.push({ collection, method: kind, filter: statement.filter ?? {}, sort: {} });
        }
      }
      return;
    }
    const options = method === 'find' ? second : third;
    captured.push({
      collection,
      method,
      filter: filter ?? {},
      sort: (options?.sort as Record<string, 1 | -1>) ?? {},
    });
  });
});

test.after.always(async () => {
  await db?.close();
});

const cursor = { createdAt: new Date(), id: 'ord_ffffffffffffffffffffffffffffffff' };
const before = new Date();

/** Every query shape of the system → the index that must serve it (and equality fields it may leave to a filter). */
const SHAPES: readonly {
  readonly shape: string;
  /** `orders` unless named. */
  readonly collection?: Collection;
  readonly index: string;
  readonly residual?: readonly string[];
  readonly run: () => Promise<unknown>;
}[] = [
  {
    shape: 'GET /orders (client)',
    index: 'client_createdAt_id',
    run: () => api.list({ clientId: PUBLIC_SCOPE, limit: 20 }),
  },
  {
    shape: 'GET /orders (client) + cursor',
    index: 'client_createdAt_id',
    run: () => api.list({ clientId: PUBLIC_SCOPE, limit: 20, after: cursor }),
  },
  {
    shape: 'GET /orders?status',
    index: 'client_status_createdAt_id',
    run: () => api.list({ clientId: PUBLIC_SCOPE, status: 'PENDING', limit: 20 }),
  },
  {
    shape: 'GET /orders?status + cursor',
    index: 'client_status_createdAt_id',
    run: () => api.list({ clientId: PUBLIC_SCOPE, status: 'PENDING', limit: 20, after: cursor }),
  },
  {
    shape: 'GET /orders?customerId',
    index: 'client_customer_createdAt_id',
    run: () => api.list({ clientId: PUBLIC_SCOPE, customerId: 'c-42', limit: 20 }),
  },
  {
    shape: 'GET /orders?customerId + cursor',
    index: 'client_customer_createdAt_id',
    run: () => api.list({ clientId: PUBLIC_SCOPE, customerId: 'c-42', limit: 20, after: cursor }),
  },
  {
    // No index has both filters: the customer's orders (few) are walked and the status is checked on each.
    shape: 'GET /orders?status&customerId + cursor',
    index: 'client_customer_createdAt_id',
    residual: ['status'],
    run: () => api.list({ clientId: PUBLIC_SCOPE, status: 'PENDING', customerId: 'c-42', limit: 20, after: cursor }),
  },
  { shape: 'GET /dlq', index: 'status_failedAt_id', run: () => api.listDead({ limit: 20 }) },
  {
    shape: 'GET /dlq + cursor',
    index: 'status_failedAt_id',
    run: () => api.listDead({ limit: 20, after: { failedAt: new Date(), id: cursor.id } }),
  },
  {
    shape: 'reconciler: unqueued scan',
    index: 'status_enqueuedAt_createdAt',
    run: () => reconcile.findUnqueued(before, 500),
  },
  {
    shape: 'reconciler: in-flight walk',
    index: 'status_updatedAt_id',
    run: () => reconcile.findInFlight('PENDING', before, 500),
  },
  {
    shape: 'reconciler: in-flight walk + cursor',
    index: 'status_updatedAt_id',
    run: () => reconcile.findInFlight('PROCESSING', before, 500, { updatedAt: new Date(0), id: cursor.id }),
  },
  {
    // The same index as the in-flight walk: ended statuses are a prefix value like any other.
    shape: 'reconciler: ended-orders walk (lost events)',
    index: 'status_updatedAt_id',
    run: () => reconcile.findEnded('PROCESSED', new Date(0), before, 500),
  },
  {
    shape: 'reconciler: ended-orders walk + cursor',
    index: 'status_updatedAt_id',
    run: () => reconcile.findEnded('CANCELLED', new Date(0), before, 500, { updatedAt: new Date(0), id: cursor.id }),
  },
  {
    shape: 'reconciler: cancelled orders still compensationDue',
    index: 'compensationDue_updatedAt_id',
    run: () => reconcile.findCompensationDue(before, 500),
  },
  {
    shape: 'reconciler: cancelled orders still compensationDue + cursor',
    index: 'compensationDue_updatedAt_id',
    run: () => reconcile.findCompensationDue(before, 500, { updatedAt: new Date(0), id: cursor.id }),
  },
  { shape: 'findById (api, worker)', index: '_id_', run: () => api.findById(seeded.pending) },
  {
    shape: 'transition by _id (claim)',
    index: '_id_',
    residual: ['status'],
    run: () => worker.claim(seeded.processing, 1),
  },
  {
    shape: 'transition by _id (cancel)',
    index: '_id_',
    residual: ['status'],
    run: () => api.cancel(seeded.failed),
  },
  {
    shape: 'markEnqueued (api, reconciler)',
    index: '_id_',
    residual: ['enqueuedAt'],
    run: () => api.markEnqueued([seeded.pending], new Date()),
  },
  { shape: 'GET /inventory/:sku', collection: 'inventory', index: '_id_', run: () => stock.find('SKU-indexed') },
  {
    shape: 'PUT /inventory/:sku (upsert)',
    collection: 'inventory',
    index: '_id_',
    run: () => stock.setAvailable('SKU-indexed', 10),
  },
  {
    // The stock and "not held yet" conditions are checked on the one document the _id names.
    shape: 'reserve, commit (one SKU each)',
    collection: 'inventory',
    index: '_id_',
    residual: ['available', 'holds.orderId', 'holds'],
    run: async () => {
      const id = randomOrderId();
      await inventory.reserve(id, [{ sku: 'SKU-indexed', quantity: 1 }]);
      await inventory.commit(id, [{ sku: 'SKU-indexed', quantity: 1 }]);
    },
  },
  {
    // An untracked SKU (the update misses, the read finds nothing), then one short: the rollback.
    shape: 'reserve short, its rollback (read the hold, release)',
    collection: 'inventory',
    index: '_id_',
    residual: ['available', 'holds.orderId', 'holds'],
    run: () =>
      inventory.reserve(randomOrderId(), [
        { sku: 'SKU-indexed-untracked', quantity: 1 },
        { sku: 'SKU-indexed', quantity: 1000 },
      ]),
  },
];

// Serial: each test reads the queries its own call captured.
for (const row of SHAPES) {
  test.serial(`when ${row.shape} runs, then index ${row.index} serves it`, async (t) => {
    const collection = row.collection ?? 'orders';
    captured = [];
    await row.run();
    t.true(captured.length > 0, 'the query was captured');
    t.deepEqual([...new Set(captured.map((q) => q.collection))], [collection], 'the queries are on its collection');
    const indexes = declaredIndexes(collection);
    const expected = indexes.find((i) => i.name === row.index);
    if (!expected) return t.fail(`no index named ${row.index} is declared on the ${collection} schema`);
    for (const query of captured) {
      const shape = shapeOf(query);
      const why = mismatch(expected, shape, row.residual ?? []);
      t.is(why, undefined, `${row.index} cannot serve ${query.method} ${JSON.stringify(shape)}: ${why}`);
      if (!realMongod) continue;
      const explain = await modelOf(collection)
        .collection.find(query.filter as never, { sort: query.sort })
        .explain('queryPlanner');
      const plan = (explain as { queryPlanner?: { winningPlan?: unknown } }).queryPlanner?.winningPlan;
      // The planner may pick another index that serves the shape as well (ties on a tiny collection).
      const serving = indexes.filter((i) => mismatch(i, shape, row.residual ?? []) === undefined).map((i) => i.name);
      const used = ixscanIndex(plan);
      t.true(
        used !== undefined && serving.includes(used),
        `explain of ${row.shape} (no IXSCAN on ${serving.join(' or ')}): ${JSON.stringify(plan)}`,
      );
    }
    if (!realMongod)
      t.log('explain check not possible here: MONGO_URL is the MongoDB stand-in, whose explain is a stub');
  });
}

test('when the Order or Inventory schema declares an index, then some query of the system uses it (an unused index only costs writes)', (t) => {
  for (const collection of ['orders', 'inventory'] as const) {
    const used = new Set(SHAPES.filter((s) => (s.collection ?? 'orders') === collection).map((s) => s.index));
    const unused = declaredIndexes(collection)
      .map((i) => i.name)
      .filter((name) => !used.has(name));
    t.deepEqual(unused, [], collection);
  }
});

test('when a query shape would need a scan, then the matcher says so', (t) => {
  const byCreatedAt: DeclaredIndex = {
    name: 'x',
    keys: [
      ['clientId', 1],
      ['createdAt', -1],
      ['_id', -1],
    ],
  };
  t.is(
    mismatch(
      byCreatedAt,
      {
        equality: ['clientId'],
        range: [],
        sort: [
          ['createdAt', -1],
          ['_id', -1],
        ],
      },
      [],
    ),
    undefined,
  );
  t.is(
    mismatch(
      byCreatedAt,
      {
        equality: ['clientId'],
        range: [],
        sort: [
          ['createdAt', 1],
          ['_id', 1],
        ],
      },
      [],
    ),
    undefined,
  );
  t.regex(
    mismatch(
      byCreatedAt,
      {
        equality: ['clientId'],
        range: [],
        sort: [
          ['createdAt', -1],
          ['_id', 1],
        ],
      },
      [],
    ) ?? '',
    /against/,
  );
  t.regex(mismatch(byCreatedAt, { equality: ['status'], range: [], sort: [] }, []) ?? '', /no equality field/);
  t.regex(mismatch(byCreatedAt, { equality: ['clientId', 'status'], range: [], sort: [] }, []) ?? '', /status/);
  t.regex(mismatch(byCreatedAt, { equality: ['clientId'], range: ['updatedAt'], sort: [] }, []) ?? '', /range/);
  t.regex(
    mismatch(byCreatedAt, { equality: ['clientId'], range: [], sort: [['updatedAt', 1]] }, []) ?? '',
    /sort field/,
  );
});
