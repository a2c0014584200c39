import Koa from 'koa';
import { Router } from '@koa/router';
import type { Queue } from 'bullmq';
import type { Registry } from 'prom-client';
import type { LogContext, Logger } from '#common';
import { createErrorMiddleware } from './http/error-middleware.js';
import cors from '@koa/cors';
import type { Redis } from 'ioredis';
import type { ApiKey } from '#common';
import { createAdminBoard } from './http/admin-board.js';
import type { AppContext, AppState } from './http/app-state.js';
import { createAuthenticate } from './http/auth.js';
import { createRateLimit } from './http/rate-limit.js';
import { securityHeaders } from './http/security-headers.js';
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
  readonly auth: { readonly enabled: boolean; readonly keys: readonly ApiKey[] };
  /** Per-client request limit; omitted (or perMinute 0) turns it off. */
  readonly rateLimit?: { readonly redis: Redis; readonly keyPrefix: string; readonly perMinute: number };
  /** Browser origins CORS allows; empty = CORS off. */
  readonly corsOrigins: readonly string[];
  readonly logger: Logger;
  readonly logContext: LogContext;
  readonly bodyLimit: string;
}

/** The Koa app with every route; it never listens (main.ts and the tests do). */
export function buildApp(deps: AppDeps): { app: Koa<AppState, AppContext>; routers: Router<AppState, AppContext>[] } {
  const app = new Koa<AppState, AppContext>({ proxy: false });
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
  const systemRouter = new Router<AppState, AppContext>();
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
  // The board serves a page with scripts, so it sits before the API's strict headers.
  if (deps.board) app.use(createAdminBoard(deps.board));
  app.use(securityHeaders);
  if (deps.corsOrigins.length > 0) {
    const allowed = new Set(deps.corsOrigins);
    app.use(cors({ origin: (ctx) => (allowed.has(ctx.get('origin')) ? ctx.get('origin') : '') }));
  }
  app.use(createAuthenticate(deps.auth));
  if (deps.rateLimit && deps.rateLimit.perMinute > 0) {
    app.use(createRateLimit({ ...deps.rateLimit, authEnabled: deps.auth.enabled }));
  }
  const routers = [ordersRouter, dlqRouter, systemRouter];
  for (const router of routers) app.use(router.routes());
  return { app, routers };
}
