import Koa from 'koa';
import { Router } from '@koa/router';
import type { Queue } from 'bullmq';
import type { Registry } from 'prom-client';
import type { LogContext, Logger } from '#common';
import { createErrorMiddleware } from './http/error-middleware.js';
import { createAdminBoard } from './http/admin-board.js';
import { createDlqRouter } from './http/dlq-router.js';
import { createApiMetrics, createHttpMetrics } from './http/metrics-middleware.js';
import { openApiDocument } from './http/openapi.js';
import { createOrdersRouter } from './http/orders-router.js';
import { createRequestContext } from './http/request-context.js';
import type { DlqService } from './services/dlq-service.js';
import type { OrderService } from './services/order-service.js';

export interface AppDeps {
  readonly orders: OrderService;
  readonly dlq: DlqService;
  /** Bull Board; mounted only when credentials are configured. */
  readonly board?: { readonly queues: readonly Queue[]; readonly user: string; readonly password: string };
  readonly registry: Registry;
  readonly logger: Logger;
  readonly logContext: LogContext;
  readonly bodyLimit: string;
}

/** The Koa app with every route; it never listens (main.ts and the tests do). */
export function buildApp(deps: AppDeps): { app: Koa; routers: Router[] } {
  const app = new Koa({ proxy: false });
  app.silent = true; // errors are logged once, by the error middleware

  const metrics = createApiMetrics({ registry: deps.registry });
  const ordersRouter = createOrdersRouter({
    orders: deps.orders,
    bodyLimit: deps.bodyLimit,
    intakeResults: metrics.intakeResults,
    idempotencyConflicts: metrics.idempotencyConflicts,
  });
  const dlqRouter = createDlqRouter({
    dlq: deps.dlq,
    bodyLimit: deps.bodyLimit,
    reprocessActions: metrics.reprocessActions,
  });
  const systemRouter = new Router();
  systemRouter.get('/metrics', async (ctx) => {
    ctx.type = deps.registry.contentType;
    ctx.body = await deps.registry.metrics();
  });
  systemRouter.get('/openapi.json', (ctx) => {
    ctx.body = openApiDocument;
  });

  app.use(createRequestContext({ logger: deps.logger, context: deps.logContext }));
  app.use(createHttpMetrics({ registry: deps.registry }));
  app.use(createErrorMiddleware({ logger: deps.logger }));
  if (deps.board) app.use(createAdminBoard(deps.board));
  app.use(async (ctx, next) => {
    // An API answers JSON to programs: never let a proxy or browser cache order data or sniff types.
    ctx.set('Cache-Control', 'no-store');
    ctx.set('X-Content-Type-Options', 'nosniff');
    await next();
  });
  const routers = [ordersRouter, dlqRouter, systemRouter];
  for (const router of routers) app.use(router.routes());
  return { app, routers };
}
