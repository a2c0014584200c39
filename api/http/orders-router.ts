import { Router } from '@koa/router';
import type { Counter } from 'prom-client';
import { AppError, IDEMPOTENCY_KEY, isOrderId, toOrderView, type OrderStatus } from '#common';
import type { OrderService } from '../services/order-service.js';
import type { AppContext, AppState } from './app-state.js';
import { orderCursor } from './cursor.js';
import { createJsonBody } from './json-body.js';
import { listOrdersQuerySchema, validate, validateNewOrder } from './order-schemas.js';

const STATUS_BY_OUTCOME = { created: 201, replayed: 200, accepted_unqueued: 202 } as const;

/** Transport only: parse and validate, call the service, shape the response. */
export function createOrdersRouter(deps: {
  readonly orders: OrderService;
  readonly bodyLimit: string;
  readonly intakeResults: Counter<'result'>;
  readonly idempotencyConflicts: Counter;
}): Router<AppState, AppContext> {
  const { orders, intakeResults, idempotencyConflicts } = deps;
  const router = new Router<AppState, AppContext>();
  const jsonBody = createJsonBody(deps.bodyLimit);

  router.post(
    '/orders',
    async (ctx, next) => {
      // Checked before the body is read: a wrong content type costs nothing.
      if (!ctx.request.is('application/json')) {
        intakeResults.inc({ result: 'rejected' });
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'POST /orders takes application/json', {
          details: [
            { field: 'Content-Type', message: `must be application/json, got ${ctx.get('content-type') || 'none'}` },
          ],
        });
      }
      try {
        await next();
      } catch (err) {
        if (err instanceof AppError && err.code === 'IDEMPOTENCY_KEY_REUSED') idempotencyConflicts.inc();
        else intakeResults.inc({ result: 'rejected' });
        throw err;
      }
    },
    jsonBody,
    async (ctx) => {
      const key = ctx.get('idempotency-key');
      if (ctx.request.headers['idempotency-key'] !== undefined && !IDEMPOTENCY_KEY.test(key)) {
        throw new AppError('VALIDATION_ERROR', 'the request is not valid', {
          details: [{ field: 'Idempotency-Key', message: 'must be 1-255 visible ASCII characters' }],
        });
      }
      const input = validateNewOrder(ctx.request.body);
      const { order, outcome } = await orders.create({
        input,
        idempotencyKey: key || undefined,
        scope: ctx.state.client.id,
        correlationId: ctx.state.requestId,
      });
      intakeResults.inc({ result: outcome });
      ctx.status = STATUS_BY_OUTCOME[outcome];
      if (outcome === 'replayed') ctx.set('Idempotent-Replayed', 'true');
      else ctx.set('Location', `/orders/${order.id}`);
      ctx.body = toOrderView(order);
    },
  );

  router.get('/orders', async (ctx) => {
    const query = validate<{ status?: OrderStatus; customerId?: string; limit: number; cursor?: string }>(
      listOrdersQuerySchema,
      ctx.query,
      { convert: true },
    );
    const page = await orders.list({
      clientId: ctx.state.client.id,
      status: query.status,
      customerId: query.customerId,
      limit: query.limit,
      after: query.cursor ? orderCursor.decode(query.cursor) : undefined,
    });
    const last = page.items.at(-1);
    ctx.body = {
      items: page.items.map(toOrderView),
      nextCursor: page.hasMore && last ? orderCursor.encode({ createdAt: last.createdAt, id: last.id }) : null,
    };
  });

  router.get('/orders/:id', async (ctx) => {
    const { id } = ctx.params;
    if (!isOrderId(id)) throw new AppError('NOT_FOUND', `order ${id} not found`);
    ctx.body = toOrderView(await orders.get(id, ctx.state.client.id));
  });

  router.post('/orders/:id/cancel', async (ctx) => {
    const { id } = ctx.params;
    if (!isOrderId(id)) throw new AppError('NOT_FOUND', `order ${id} not found`);
    ctx.body = toOrderView(await orders.cancel(id, ctx.state.client.id));
  });

  return router;
}
