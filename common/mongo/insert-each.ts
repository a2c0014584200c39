import type { Collection } from 'mongoose';
import { MongoBatchUnavailableError } from './connection.js';

/** What became of one document of {@link insertEach}. */
export type InsertOutcome = 'inserted' | 'duplicate' | Error;

/**
 * Inserts documents in one unordered `insertMany` and says what became of each, in order: stored, a
 * `duplicate` (its `_id` exists: code 11000), or the server's error for that document alone. The
 * group commits of the api (orders) and the worker (effects) both rest on this. Throws
 * {@link MongoBatchUnavailableError} when the command failed as a whole (network, pool, write
 * concern: no answer for any document, so every outcome is unknown), and rethrows anything else.
 * A repeated `_id` is judged by the server as two inserts would be: the first is stored, a later one
 * is a `duplicate`.
 */
export async function insertEach(collection: Collection, docs: readonly object[]): Promise<InsertOutcome[]> {
  try {
    await collection.insertMany(docs as never[], { ordered: false });
    return docs.map(() => 'inserted');
  } catch (err) {
    const failed = bulkWriteErrors(err);
    if (!failed) throw err;
    if (failed.size === 0) throw new MongoBatchUnavailableError((err as Error).message, { cause: err });
    return docs.map((_, i) => {
      const e = failed.get(i);
      if (!e) return 'inserted';
      return e.code === 11000 ? 'duplicate' : new Error(e.errmsg ?? 'write error', { cause: err });
    });
  }
}

/** One operation's error in a failed unordered bulk command. */
export interface BulkOperationError {
  readonly code?: number;
  readonly errmsg?: string;
}

/**
 * The per-operation errors of a failed unordered bulk command (`insertMany`, `bulkWrite`), by the
 * operation's index: the operations not listed were applied. Undefined when `err` is no bulk write
 * error; an empty map when the command failed as a whole (network, pool, write concern: no
 * per-operation answer).
 */
export function bulkWriteErrors(err: unknown): Map<number, BulkOperationError> | undefined {
  const writeErrors = (err as { name?: string; writeErrors?: unknown }).writeErrors;
  if ((err as Error).name !== 'MongoBulkWriteError' || writeErrors === undefined) return undefined;
  const failed = new Map<number, BulkOperationError>();
  for (const e of [writeErrors].flat() as Array<BulkOperationError & { index: number }>) failed.set(e.index, e);
  return failed;
}
