import { Router } from '@koa/router';
import type { Counter } from 'prom-client';
import { AppError, isOrderId, toOrderView } from '#common';
import type { AuditLog } from '../services/audit-service.js';
import type { DlqService } from '../services/dlq-service.js';
import type { NotificationDlqService } from '../services/notification-dlq-service.js';
import type { AppContext, AppState } from './app-state.js';
import { requireAdmin } from './auth.js';
import { dlqCursor } from './cursor.js';
import { createOptionalJsonBody } from './json-body.js';
import {
  REPLAY_FILTER_FIELDS,
  dlqListQuerySchema,
  reprocessManySchema,
  reprocessOneQuerySchema,
  reprocessOneSchema,
  type DlqQueue,
} from './dlq-schemas.js';
import { validate } from './order-schemas.js';
import { REPROCESS_BATCH } from '../services/dlq-service.js';

interface ReprocessManyBody {
  readonly queue: DlqQueue;
  readonly orderIds?: string[];
  readonly reason?: string;
  readonly operator?: string;
  readonly customerId?: string;
  readonly failedReason?: string;
  readonly failedFrom?: string;
  readonly failedTo?: string;
  readonly dryRun?: boolean;
  readonly limit?: number;
}

/** The operators' dead-letter routes (docs/design.md): list dead orders, bring them back. */
export function createDlqRouter(deps: {
  readonly dlq: DlqService;
  readonly notificationDlq: NotificationDlqService;
  readonly bodyLimit: string;
  readonly reprocessActions: Counter<'scope'>;
  /** Replays are operators' actions: each one that changes something is audited. */
  readonly audit: AuditLog;
}): Router<AppState, AppContext> {
  const { dlq, notificationDlq, reprocessActions, audit } = deps;
  const audited = (
    ctx: AppContext & { state: AppState },
    entry: { actor: string; action: string; queue: DlqQueue; jobId?: string; reason?: string },
  ) =>
    audit.record({
      ...entry,
      role: 'admin',
      source: 'api',
      outcome: 'done',
      status: 202,
      requestId: ctx.state.requestId,
    });
  const invalid = (field: string, message: string) =>
    new AppError('VALIDATION_ERROR', `${field} ${message}`, { details: [{ field, message }] });
  const router = new Router<AppState, AppContext>();
  // The body is optional here: no body, or a JSON object.
  const optionalJson = createOptionalJsonBody(deps.bodyLimit);

  router.get('/dlq', requireAdmin, async (ctx) => {
    const query = validate<{ queue: DlqQueue; limit: number; cursor?: string }>(dlqListQuerySchema, ctx.query, {
      convert: true,
    });
    if (query.queue === 'notifications') {
      // The failed set is read newest first, a bounded page; `total` says how many there are.
      if (query.cursor) throw invalid('cursor', 'is not allowed with queue=notifications');
      const page = await notificationDlq.list(query.limit);
      ctx.body = { items: page.items, nextCursor: null, total: page.total };
      return;
    }
    const page = await dlq.list({
      limit: query.limit,
      after: query.cursor ? dlqCursor.decode(query.cursor) : undefined,
    });
    const last = page.items.at(-1)?.order;
    ctx.body = {
      items: page.items.map(({ order, job }) => ({ order: toOrderView(order), job })),
      nextCursor: page.hasMore && last?.failedAt ? dlqCursor.encode({ failedAt: last.failedAt, id: last.id }) : null,
    };
  });

  router.post('/dlq/reprocess', requireAdmin, optionalJson, async (ctx) => {
    const body = validate<ReprocessManyBody>(reprocessManySchema, ctx.request.body ?? {}, { convert: false });
    // The operator named in history and logs: the one the caller names, else the API client itself.
    const actor = body.operator ?? ctx.state.client.id;
    if (body.queue === 'notifications' && body.orderIds) {
      throw invalid('orderIds', 'is not allowed with queue "notifications"');
    }
    if (REPLAY_FILTER_FIELDS.some((field) => body[field] !== undefined)) {
      const failedFrom = body.failedFrom === undefined ? undefined : new Date(body.failedFrom);
      const failedTo = body.failedTo === undefined ? undefined : new Date(body.failedTo);
      if (failedFrom && failedTo && failedFrom >= failedTo) throw invalid('failedTo', 'must be after failedFrom');
      const input = {
        filter: {
          orderIds: body.orderIds,
          customerId: body.customerId,
          failedReason: body.failedReason,
          failedFrom,
          failedTo,
        },
        limit: body.limit ?? REPROCESS_BATCH,
        dryRun: body.dryRun ?? false,
        actor,
        reason: body.reason,
      };
      const result =
        body.queue === 'notifications' ? await notificationDlq.replayMatching(input) : await dlq.replayMatching(input);
      if (!result.dryRun) {
        reprocessActions.inc({ scope: 'filtered' });
        await audited(ctx, { actor, action: 'dlq.replay', queue: body.queue, reason: body.reason });
      }
      ctx.status = result.dryRun ? 200 : 202;
      ctx.body = result;
      return;
    }
    if (body.queue === 'notifications') {
      const result = await notificationDlq.reprocessAll(actor);
      reprocessActions.inc({ scope: 'bulk' });
      await audited(ctx, { actor, action: 'dlq.replay', queue: body.queue, reason: body.reason });
      ctx.status = 202;
      ctx.body = result;
      return;
    }
    const result = await dlq.reprocessMany({ orderIds: body.orderIds, reason: body.reason, actor });
    reprocessActions.inc({ scope: 'bulk' });
    await audited(ctx, { actor, action: 'dlq.replay', queue: 'orders', reason: body.reason });
    ctx.status = 202;
    ctx.body = result;
  });

  router.post('/dlq/:orderId/reprocess', requireAdmin, optionalJson, async (ctx) => {
    const { orderId } = ctx.params;
    const { queue } = validate<{ queue: DlqQueue }>(reprocessOneQuerySchema, ctx.query, { convert: true });
    if (queue === 'notifications') {
      // Here the id is the notification's job id (its `webhook-id`, `<orderId>-<status>`).
      if (!/^[\w-]{1,100}$/.test(orderId)) throw new AppError('NOT_FOUND', `notification ${orderId} not found`);
      const { reason, operator } = validate<{ reason?: string; operator?: string }>(
        reprocessOneSchema,
        ctx.request.body ?? {},
        { convert: false },
      );
      // The reason goes to the log line: a job has no history to record it in.
      const job = await notificationDlq.reprocess(orderId, { actor: operator ?? ctx.state.client.id, reason });
      reprocessActions.inc({ scope: 'one' });
      await audited(ctx, {
        actor: operator ?? ctx.state.client.id,
        action: 'dlq.reprocess',
        queue,
        jobId: orderId,
        reason,
      });
      ctx.status = 202;
      ctx.body = job;
      return;
    }
    if (!isOrderId(orderId)) throw new AppError('NOT_FOUND', `order ${orderId} not found`);
    const body = validate<{ reason?: string; operator?: string }>(reprocessOneSchema, ctx.request.body ?? {}, {
      convert: false,
    });
    const actor = body.operator ?? ctx.state.client.id;
    const { order } = await dlq.reprocess(orderId, { actor, reason: body.reason });
    reprocessActions.inc({ scope: 'one' });
    await audited(ctx, { actor, action: 'dlq.reprocess', queue, jobId: orderId, reason: body.reason });
    ctx.status = 202;
    ctx.body = toOrderView(order);
  });

  return router;
}
