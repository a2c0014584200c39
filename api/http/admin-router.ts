import { Router } from '@koa/router';
import type { AuditLog } from '../services/audit-service.js';
import type { PausableQueue, ProcessingService } from '../services/processing-service.js';
import type { AppContext, AppState } from './app-state.js';
import { requireAdmin } from './auth.js';
import { auditQuerySchema, processingChangeSchema } from './admin-schemas.js';
import { createOptionalJsonBody } from './json-body.js';
import { validate } from './order-schemas.js';

/**
 * The operators' control routes (admin key): pause and resume processing fleet-wide, see whether it
 * is paused, and read the audit of operators' actions. Transport only.
 */
export function createAdminRouter(deps: {
  readonly processing: ProcessingService;
  readonly audit: AuditLog;
  readonly bodyLimit: string;
}): Router<AppState, AppContext> {
  const { processing, audit } = deps;
  const router = new Router<AppState, AppContext>();
  const optionalJson = createOptionalJsonBody(deps.bodyLimit);

  router.get('/admin/processing', requireAdmin, async (ctx) => {
    ctx.body = await processing.status();
  });

  for (const verb of ['pause', 'resume'] as const) {
    router.post(`/admin/processing/${verb}`, requireAdmin, optionalJson, async (ctx) => {
      const body = validate<{ queue: PausableQueue; operator?: string; reason?: string }>(
        processingChangeSchema,
        ctx.request.body ?? {},
        { convert: false },
      );
      const who = {
        actor: body.operator ?? ctx.state.client.id,
        role: 'admin',
        reason: body.reason,
        requestId: ctx.state.requestId,
      };
      ctx.body = await processing[verb](body.queue, who);
    });
  }

  router.get('/admin/audit', requireAdmin, async (ctx) => {
    const query = validate<{ limit: number; actor?: string; action?: string; cursor?: string }>(
      auditQuerySchema,
      ctx.query,
      { convert: true },
    );
    const page = await audit.list({
      limit: query.limit,
      actor: query.actor,
      action: query.action,
      before: query.cursor,
    });
    ctx.body = {
      items: page.items.map((e) => ({ ...e, at: e.at.toISOString() })),
      nextCursor: page.hasMore ? (page.items.at(-1)?.id ?? null) : null,
    };
  });

  return router;
}
