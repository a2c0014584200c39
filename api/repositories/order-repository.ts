import mongoose from 'mongoose';
import {
  insertEach,
  QUERY_MAX_TIME_MS,
  findOrderById,
  markOrdersEnqueued,
  orderMoves,
  toOrder,
  transitionOrder,
  type Order,
  type OrderDocument,
  type OrderModels,
  type OrderStatus,
} from '#common';

/** Raised when an order with the same id already exists (the idempotency key was used before). */
export class DuplicateOrderError extends Error {
  constructor(readonly orderId: string) {
    super(`order ${orderId} already exists`);
    this.name = 'DuplicateOrderError';
  }
}

export interface ListOrdersQuery {
  readonly clientId: string;
  readonly status?: OrderStatus;
  readonly customerId?: string;
  readonly limit: number;
  readonly after?: { readonly createdAt: Date; readonly id: string };
}

/**
 * Which dead orders a filtered replay takes (every field optional, all must hold): listed ids, a
 * customer, a failure reason (a case-insensitive substring of `lastError`, e.g. an error code), and a
 * failure time in [failedFrom, failedTo).
 */
export interface DeadOrderFilter {
  readonly orderIds?: readonly string[];
  readonly customerId?: string;
  readonly failedReason?: string;
  readonly failedFrom?: Date;
  readonly failedTo?: Date;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The MongoDB filter of {@link DeadOrderFilter}: only validated values, the operators are ours. */
function deadOrderQuery(filter: DeadOrderFilter): Record<string, unknown> {
  const query: Record<string, unknown> = { status: 'FAILED' };
  if (filter.orderIds) query._id = mongoose.trusted({ $in: [...filter.orderIds] });
  if (filter.customerId) query.customerId = filter.customerId;
  if (filter.failedReason) {
    query.lastError = mongoose.trusted({ $regex: escapeRegExp(filter.failedReason), $options: 'i' });
  }
  if (filter.failedFrom || filter.failedTo) {
    query.failedAt = mongoose.trusted({
      ...(filter.failedFrom ? { $gte: filter.failedFrom } : {}),
      ...(filter.failedTo ? { $lt: filter.failedTo } : {}),
    });
  }
  return query;
}

export type OrderRepository = ReturnType<typeof createOrderRepository>;

const toDocument = ({ id, ...rest }: Order): OrderDocument => ({ _id: id, ...rest }) as OrderDocument;

/**
 * Data access for the api: plain objects in, plain objects out; the order's moves are the named ones
 * of common/domain/order-moves.ts, each one atomic conditional update.
 */
export function createOrderRepository({ models }: { readonly models: Pick<OrderModels, 'Order'> }) {
  const { Order: OrderModel } = models;
  return {
    /** Inserts a new order; throws {@link DuplicateOrderError} when its id exists. One command. */
    async insert(order: Order): Promise<Order> {
      const doc = toDocument(order);
      try {
        await OrderModel.collection.insertOne(doc as never);
      } catch (err) {
        if ((err as { code?: number }).code === 11000) throw new DuplicateOrderError(order.id);
        throw err;
      }
      return toOrder(doc);
    },

    /**
     * Inserts new orders in one unordered command (group commit at intake). One outcome per order, in
     * order: the order when stored, a {@link DuplicateOrderError} when its id exists, or the server's
     * error for that order alone. Throws (every order's outcome unknown) when the command itself fails.
     * The ids must be distinct (the caller dedupes): a repeated id would be judged by the server.
     */
    async insertMany(orders: readonly Order[]): Promise<Array<Order | Error>> {
      const docs = orders.map(toDocument);
      const outcomes = await insertEach(OrderModel.collection, docs);
      return outcomes.map((outcome, i) => {
        if (outcome === 'inserted') return toOrder(docs[i]);
        if (outcome === 'duplicate') return new DuplicateOrderError(orders[i].id);
        return new Error(`order ${orders[i].id} not stored: ${outcome.message}`, { cause: outcome });
      });
    },

    findById: (id: string) => findOrderById(OrderModel, id),

    /** Records that these orders' jobs are in Redis (the outbox's second half). One command. */
    markEnqueued: (ids: readonly string[], at: Date) => markOrdersEnqueued(OrderModel, ids, at),

    /** {@link orderMoves.cancel}: null when the order is missing or not cancellable. */
    cancel: (id: string) => transitionOrder(OrderModel, id, orderMoves.cancel()),

    /** {@link orderMoves.reprocess}: null when the order is missing or not FAILED. */
    reprocess: (id: string, actor: string, why?: string) =>
      transitionOrder(OrderModel, id, orderMoves.reprocess(actor, why)),

    /** One page of dead (FAILED) orders, newest failure first, served by the (status, failedAt, _id) index. */
    async listDead(query: {
      limit: number;
      after?: { failedAt: Date; id: string };
    }): Promise<{ items: Order[]; hasMore: boolean }> {
      const filter: Record<string, unknown> = { status: 'FAILED' };
      if (query.after) {
        filter.$or = [
          { failedAt: mongoose.trusted({ $lt: query.after.failedAt }) },
          { failedAt: query.after.failedAt, _id: mongoose.trusted({ $lt: query.after.id }) },
        ];
      }
      const docs = await OrderModel.find(filter)
        .sort({ status: 1, failedAt: -1, _id: -1 })
        .limit(query.limit + 1)
        .maxTimeMS(QUERY_MAX_TIME_MS)
        .lean();
      const items = (docs as OrderDocument[]).slice(0, query.limit).map(toOrder);
      return { items, hasMore: docs.length > query.limit };
    },

    /** Up to `limit` dead orders that match `filter`, newest failure first (the dead-letter index). */
    async findDead(filter: DeadOrderFilter, limit: number): Promise<Order[]> {
      const docs = await OrderModel.find(deadOrderQuery(filter))
        .sort({ status: 1, failedAt: -1, _id: -1 })
        .limit(limit)
        .maxTimeMS(QUERY_MAX_TIME_MS)
        .lean();
      return (docs as OrderDocument[]).map(toOrder);
    },

    /** How many dead orders match `filter`. */
    countDead: (filter: DeadOrderFilter): Promise<number> =>
      OrderModel.countDocuments(deadOrderQuery(filter)).maxTimeMS(QUERY_MAX_TIME_MS).exec(),

    /** One page, newest first, served by the (filter, createdAt, _id) indexes. Fetches one extra to know if more follow. */
    async list(query: ListOrdersQuery): Promise<{ items: Order[]; hasMore: boolean }> {
      // Only validated scalars reach the filter; the operators are ours (trusted past sanitizeFilter).
      const filter: Record<string, unknown> = { clientId: query.clientId };
      if (query.status) filter.status = query.status;
      if (query.customerId) filter.customerId = query.customerId;
      if (query.after) {
        filter.$or = [
          { createdAt: mongoose.trusted({ $lt: query.after.createdAt }) },
          { createdAt: query.after.createdAt, _id: mongoose.trusted({ $lt: query.after.id }) },
        ];
      }
      const docs = await OrderModel.find(filter)
        .sort({ createdAt: -1, _id: -1 })
        .limit(query.limit + 1)
        .maxTimeMS(QUERY_MAX_TIME_MS)
        .lean();
      const items = (docs as OrderDocument[]).slice(0, query.limit).map(toOrder);
      return { items, hasMore: docs.length > query.limit };
    },
  };
}
