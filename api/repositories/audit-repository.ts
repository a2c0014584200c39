import mongoose, { Schema, type Connection, type Model } from 'mongoose';
import { QUERY_MAX_TIME_MS } from '#common';

/** Where an operator's action came from, and how it ended. */
export type AuditSource = 'api' | 'board';
export type AuditOutcome = 'done' | 'refused' | 'failed';

/** One operator action as the audit keeps it (docs/design.md, "Operators' control"). */
export interface AuditEvent {
  readonly at: Date;
  /** The operator: a dashboard account's name, the `operator` an API caller named, or the API client id. */
  readonly actor: string;
  /** `operator` or `viewer` on the board; `admin` for an admin API client. */
  readonly role: string;
  readonly source: AuditSource;
  /** What was asked: `processing.pause`, `board.retry`, `dlq.replay`… */
  readonly action: string;
  readonly queue?: string;
  readonly jobId?: string;
  /** The request as it came (`PUT /admin/queues/api/queues/orders/<id>/retry`), for board calls. */
  readonly path?: string;
  readonly outcome: AuditOutcome;
  /** The HTTP status answered. */
  readonly status?: number;
  /** The operator's reason, when given. */
  readonly reason?: string;
  readonly requestId?: string;
}

export interface StoredAuditEvent extends AuditEvent {
  readonly id: string;
}

interface AuditDocument extends AuditEvent {
  _id: mongoose.Types.ObjectId;
}

/** The `audit_events` collection: newest first by `_id`, and a TTL index on `at` bounds its retention. */
export function registerAuditModel(connection: Connection, retentionDays: number): Model<AuditDocument> {
  const schema = new Schema<AuditDocument>(
    {
      at: { type: Date, required: true },
      actor: { type: String, required: true },
      role: { type: String, required: true },
      source: { type: String, required: true },
      action: { type: String, required: true },
      queue: String,
      jobId: String,
      path: String,
      outcome: { type: String, required: true },
      status: Number,
      reason: String,
      requestId: String,
    },
    { collection: 'audit_events', versionKey: false, autoIndex: false },
  );
  // Retention: MongoDB drops a record once `at` is older than this (checked about once a minute).
  schema.index({ at: 1 }, { expireAfterSeconds: retentionDays * 86_400 });
  schema.index({ actor: 1, _id: -1 });
  return connection.model<AuditDocument>('AuditEvent', schema);
}

export type AuditRepository = ReturnType<typeof createAuditRepository>;

/** Data access of the audit: insert one record, read a page newest first. */
export function createAuditRepository({ Audit }: { readonly Audit: Model<AuditDocument> }) {
  const toEvent = (doc: AuditDocument): StoredAuditEvent => {
    const { _id, ...rest } = doc;
    return { id: _id.toHexString(), ...rest };
  };
  return {
    ensureIndexes: () => Audit.createIndexes(),

    async insert(event: AuditEvent): Promise<void> {
      await Audit.collection.insertOne({ _id: new mongoose.Types.ObjectId(), ...event } as never);
    },

    /** One page, newest first; `before` is the id of the last record of the previous page. */
    async list(query: {
      limit: number;
      actor?: string;
      action?: string;
      before?: string;
    }): Promise<{ items: StoredAuditEvent[]; hasMore: boolean }> {
      const filter: Record<string, unknown> = {};
      if (query.actor) filter.actor = query.actor;
      if (query.action) filter.action = query.action;
      if (query.before) filter._id = mongoose.trusted({ $lt: new mongoose.Types.ObjectId(query.before) });
      const docs = (await Audit.find(filter)
        .sort({ _id: -1 })
        .limit(query.limit + 1)
        .maxTimeMS(QUERY_MAX_TIME_MS)
        .lean()) as AuditDocument[];
      return { items: docs.slice(0, query.limit).map(toEvent), hasMore: docs.length > query.limit };
    },
  };
}
