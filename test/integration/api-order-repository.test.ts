import test from 'ava';
import {
  createLogger,
  createMongoConnection,
  isMongoUnavailable,
  openMongo,
  registerOrderModels,
  toOrder,
  type Order,
} from '#common';
import {
  DuplicateOrderError,
  createOrderRepository,
  type OrderRepository,
} from '../../api/repositories/order-repository.js';
import { storedOrder } from '../helpers/orders.js';
import { startFreezableProxy } from '../helpers/freezable-proxy.js';
import { openTestMongo, type TestMongo } from '../helpers/mongo.js';
import { testServices, uniqueName } from '../helpers/services.js';

// The api repository's group-commit insert against a real MongoDB wire server: one unordered
// insertMany whose per-order outcomes come from the server's write errors.

let db: TestMongo;
let repository: OrderRepository;

test.before(async () => {
  db = await openTestMongo('api_order_repo');
  repository = createOrderRepository({ models: db.models });
});

test.after.always(async () => {
  await db?.close();
});

const pending = (id: string): Order => toOrder(storedOrder('PENDING', { _id: id, enqueuedAt: null }));

test('when a batch holds new orders around an existing id, then the new ones are stored and only that one is a duplicate', async (t) => {
  const suffix = Date.now().toString(36);
  const existing = pending(`ord_old_${suffix}`);
  await repository.insert(existing);

  const outcomes = await repository.insertMany([
    pending(`ord_a_${suffix}`),
    pending(existing.id),
    pending(`ord_b_${suffix}`),
  ]);

  t.is((outcomes[0] as Order).id, `ord_a_${suffix}`);
  t.true(outcomes[1] instanceof DuplicateOrderError);
  t.is((outcomes[1] as DuplicateOrderError).orderId, existing.id);
  t.is((outcomes[2] as Order).id, `ord_b_${suffix}`);
  const stored = await db.models.Order.collection
    .find({ _id: { $in: [`ord_a_${suffix}`, `ord_b_${suffix}`] } } as never)
    .toArray();
  t.is(stored.length, 2, 'the orders after the duplicate were written too (unordered)');
});

test('when every order of a batch is new, then each comes back as stored, in order', async (t) => {
  const ids = [1, 2, 3].map((i) => `ord_new_${i}_${Date.now().toString(36)}`);

  const outcomes = await repository.insertMany(ids.map(pending));

  t.deepEqual(
    outcomes.map((o) => (o as Order).id),
    ids,
  );
  t.deepEqual(
    outcomes.map((o) => (o as Order).enqueuedAt),
    [null, null, null],
  );
  t.is(await db.models.Order.collection.countDocuments({ _id: { $in: ids } } as never), 3);
});

test('when the connection fails under a whole batch, then insertMany rejects with an error the api answers 503 for', async (t) => {
  // The driver wraps a network or pool failure of an insertMany in a MongoBulkWriteError with no
  // per-document error; the repository must not let it pass for a bug (a 500).
  const real = new URL((await testServices()).mongoUrl('x'));
  const proxy = await startFreezableProxy({ host: real.hostname, port: Number(real.port || 27017) });
  const connection = createMongoConnection();
  t.teardown(async () => {
    proxy.thaw();
    await connection.close().catch(() => undefined);
    await proxy.close();
  });
  await openMongo(connection, `mongodb://127.0.0.1:${proxy.port}/${uniqueName('api_order_repo_cut')}`, {
    timeoutMs: 1000,
    appName: 'api-order-repo-cut-test',
    logger: createLogger({ service: 'test', level: 'silent' }),
  });
  const cut = createOrderRepository({ models: registerOrderModels(connection) });
  const suffix = Date.now().toString(36);
  await cut.insertMany([pending(`ord_cut_a_${suffix}`)]);

  proxy.freeze();
  const err = await t.throwsAsync(cut.insertMany([pending(`ord_cut_b_${suffix}`), pending(`ord_cut_c_${suffix}`)]));

  t.true(isMongoUnavailable(err), `${err?.name}: ${err?.message}`);
});
