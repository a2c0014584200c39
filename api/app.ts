import Koa from 'koa';
import { Router } from '@koa/router';
import type { Queue } from 'bullmq';
import type { Registry } from 'prom-client';
import type { LogContext, Logger, Profiler } from '#common';
import { createErrorMiddleware } from './http/error-middleware.js';
import cors from '@koa/cors';
import type { RedisClient } from '#common';
import type { ApiKey, BoardAccount, JwtConfig } from '#common';
import { createAdminBoard } from './http/admin-board.js';
import type { AppContext, AppState } from './http/app-state.js';
import { createAuthenticate } from './http/auth.js';
import { createJwtVerifier } from './http/jwt-verifier.js';
import { createProbes, type Probe } from './http/probes.js';
import { createAuthFailureGuard, createRateLimit } from './http/rate-limit.js';
import { securityHeaders } from './http/security-headers.js';
import { createDlqRouter } from './http/dlq-router.js';
import { createInventoryRouter } from './http/inventory-router.js';
import { createApiMetrics, createHttpMetrics } from './http/metrics-middleware.js';
import { openApiDocument } from './http/openapi.js';
import { createOrdersRouter } from './http/orders-router.js';
import { createProfileRouter } from './http/profile-router.js';
import { createRequestContext } from './http/request-context.js';
import { createAdminRouter } from './http/admin-router.js';
import type { AuditLog } from './services/audit-service.js';
import type { DlqService } from './services/dlq-service.js';
import type { ProcessingService } from './services/processing-service.js';
import type { NotificationDlqService } from './services/notification-dlq-service.js';
import type { InventoryService } from './services/inventory-service.js';
import type { OrderService } from './services/order-service.js';

export interface AppDeps {
  readonly orders: OrderService;
  readonly dlq: DlqService;
  /** The undeliverable webhooks (`GET /dlq?queue=notifications`). */
  readonly notificationDlq: NotificationDlqService;
  readonly inventory: InventoryService;
  /** Pause and resume processing (`/admin/processing`). */
  readonly processing: ProcessingService;
  /** The audit of operators' actions (board calls, pauses), read at `GET /admin/audit`. */
  readonly audit: AuditLog;
  /** Bull Board; mounted only when a shared login or named accounts are configured. */
  readonly board?: {
    readonly queues: readonly Queue[];
    readonly user?: string;
    readonly password?: string;
    readonly accounts: readonly BoardAccount[];
  };
  readonly registry: Registry;
  /** `POST /admin/profile` (CPU profiles and heap snapshots of this process); the route is absent without it. */
  readonly profiler?: Profiler;
  readonly auth: {
    readonly enabled: boolean;
    readonly keys: readonly ApiKey[];
    /** Failed authentications per address (and board user) per 15 minutes before 429; 0 = no blocking. */
    readonly failureLimit: number;
    /** Bearer JWTs verified against a JWKS, next to the API keys. */
    readonly jwt?: JwtConfig;
  };
  /** The probes (`/health/live`, `/health/ready`), answered by the app. */
  readonly probes?: Readonly<Record<string, Probe>>;
  /** Per-client request limit; omitted (or perMinute 0) turns it off. */
  readonly rateLimit?: { readonly redis: RedisClient; readonly keyPrefix: string; readonly perMinute: number };
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
    notificationDlq: deps.notificationDlq,
    bodyLimit: deps.bodyLimit,
    reprocessActions: metrics.reprocessActions,
    audit: deps.audit,
  });
  const adminRouter = createAdminRouter({ processing: deps.processing, audit: deps.audit, bodyLimit: deps.bodyLimit });
  const inventoryRouter = createInventoryRouter({ inventory: deps.inventory, bodyLimit: deps.bodyLimit });
  const systemRouter = new Router<AppState, AppContext>();
  systemRouter.get('/metrics', async (ctx) => {
    ctx.type = deps.registry.contentType;
    ctx.body = await deps.registry.metrics();
  });
  systemRouter.get('/openapi.json', (ctx) => {
    ctx.body = openApiDocument;
  });

  const limited = deps.rateLimit && deps.rateLimit.perMinute > 0 ? deps.rateLimit : undefined;
  // One guard for every credential (API keys, JWTs, the board's password), shared through Redis.
  const guard = createAuthFailureGuard({
    redis: deps.rateLimit?.redis,
    keyPrefix: deps.rateLimit?.keyPrefix ?? 'ratelimit',
    limit: deps.auth.failureLimit,
    registry: deps.registry,
  });

  app.use(createRequestContext({ logger: deps.logger, context: deps.logContext }));
  app.use(createHttpMetrics({ registry: deps.registry }));
  app.use(createErrorMiddleware({ logger: deps.logger }));
  // The board serves a page with scripts, so it sits before the API's strict headers, with its own;
  // it is limited per address like any anonymous caller (before its credentials are checked).
  if (deps.board) {
    const limit = limited
      ? createRateLimit({ ...limited, authEnabled: false, keyOf: (ctx) => `ip:${ctx.ip}` })
      : undefined;
    app.use(createAdminBoard({ ...deps.board, guard, limit, audit: deps.audit }));
  }
  app.use(securityHeaders);
  if (deps.probes) app.use(createProbes(deps.probes));
  if (deps.corsOrigins.length > 0) {
    const allowed = new Set(deps.corsOrigins);
    app.use(
      cors({
        origin: (ctx) => (allowed.has(ctx.get('origin')) ? ctx.get('origin') : ''),
        // Only what some route serves; and the headers a browser script needs to read.
        allowMethods: ['GET', 'HEAD', 'POST'],
        exposeHeaders: [
          'Location',
          'X-Request-Id',
          'Idempotent-Replayed',
          'Retry-After',
          'RateLimit-Limit',
          'RateLimit-Remaining',
          'RateLimit-Reset',
        ],
      }),
    );
  }
  app.use(
    createAuthenticate({
      enabled: deps.auth.enabled,
      keys: deps.auth.keys,
      guard,
      jwt: deps.auth.jwt ? createJwtVerifier(deps.auth.jwt) : undefined,
    }),
  );
  if (limited) app.use(createRateLimit({ ...limited, authEnabled: deps.auth.enabled }));
  const routers = [ordersRouter, dlqRouter, inventoryRouter, adminRouter, systemRouter];
  if (deps.profiler) routers.push(createProfileRouter({ profiler: deps.profiler, logger: deps.logger }));
  for (const router of routers) app.use(router.routes());
  return { app, routers };
}
