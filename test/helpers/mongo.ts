import type { Connection } from 'mongoose';
import {
  createLogger,
  createMongoConnection,
  ensureOrderIndexes,
  openMongo,
  registerOrderModels,
  type OrderModels,
} from '#common';
import { stopTestServices, testServices, uniqueName } from './services.js';

export interface TestMongo {
  readonly connection: Connection;
  readonly models: OrderModels;
  /** Drops the database, closes the connection and stops embedded services of this file. */
  close(): Promise<void>;
}

/** A MongoDB connection to a database of its own (named after `label`), with the order models and indexes. */
export async function openTestMongo(label: string): Promise<TestMongo> {
  const services = await testServices();
  const connection = createMongoConnection();
  const models = registerOrderModels(connection);
  await openMongo(connection, services.mongoUrl(uniqueName(label)), {
    timeoutMs: 5000,
    appName: `${label}-test`,
    logger: createLogger({ service: 'test', level: 'silent' }),
  });
  await ensureOrderIndexes(models);
  return {
    connection,
    models,
    async close() {
      await connection.dropDatabase().catch(() => undefined);
      await connection.close().catch(() => undefined);
      await stopTestServices();
    },
  };
}

/**
 * The real `collection`, telling `onCall` of every call of one of its methods (each call is one round
 * trip to the real server; nothing is faked underneath). `methods` limits it to those names.
 */
export function observedCollection<C extends object>(
  collection: C,
  onCall: (method: string, args: readonly unknown[]) => void,
  methods?: readonly string[],
): C {
  return new Proxy(collection, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const fn = value as (...a: unknown[]) => unknown;
      if (methods && !methods.includes(String(name))) return fn.bind(target);
      return (...args: unknown[]) => {
        onCall(String(name), args);
        return fn.apply(target, args);
      };
    },
  });
}
