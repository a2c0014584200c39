import { Router } from '@koa/router';
import Joi from 'joi';
import { AppError } from '#common';
import type { InventoryService } from '../services/inventory-service.js';
import { requireAdmin, type Client } from './auth.js';
import { createJsonBody } from './json-body.js';
import { validate } from './order-schemas.js';

/** The largest stock one SKU may be set to. */
export const MAX_AVAILABLE = 1_000_000_000;

/** `:sku` of the inventory routes: the same rule as an order item's sku (docs/design.md, "Orders"). */
export const skuParamSchema = Joi.object({
  sku: Joi.string()
    .pattern(/^[A-Za-z0-9_.-]{1,64}$/)
    .required(),
});

/** PUT /inventory/:sku body: the stock on hand; strict types, unknown fields rejected. */
export const setStockSchema = Joi.object({
  available: Joi.number().integer().min(0).max(MAX_AVAILABLE).required(),
}).required();

/** The operators' stock routes (admin only). Transport only: validate, call the service, answer. */
export function createInventoryRouter(deps: {
  readonly inventory: InventoryService;
  readonly bodyLimit: string;
}): Router {
  const { inventory } = deps;
  const router = new Router();
  const jsonBody = createJsonBody(deps.bodyLimit);

  router.put(
    '/inventory/:sku',
    requireAdmin,
    async (ctx, next) => {
      // Checked before the body is read: a wrong content type costs nothing.
      if (!ctx.request.is('application/json')) {
        throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'PUT /inventory/:sku takes application/json', {
          details: [
            { field: 'Content-Type', message: `must be application/json, got ${ctx.get('content-type') || 'none'}` },
          ],
        });
      }
      await next();
    },
    jsonBody,
    async (ctx) => {
      const { sku } = validate<{ sku: string }>(skuParamSchema, { sku: ctx.params.sku }, { convert: false });
      const body = validate<{ available: number }>(setStockSchema, ctx.request.body, { convert: false });
      ctx.body = await inventory.setAvailable(sku, body.available, (ctx.state.client as Client).id);
    },
  );

  router.get('/inventory/:sku', requireAdmin, async (ctx) => {
    const { sku } = ctx.params;
    // A sku outside the rule can never have been stocked: like any unknown SKU, it is not found.
    if (skuParamSchema.validate({ sku }).error) throw new AppError('NOT_FOUND', 'no such SKU in inventory');
    ctx.body = await inventory.get(sku);
  });

  return router;
}
