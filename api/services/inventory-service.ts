import { AppError, type Logger, type StockLevel } from '#common';
import type { InventoryRepository } from '../repositories/inventory-repository.js';

export type InventoryService = ReturnType<typeof createInventoryService>;

/** The operators' stock: set what is on hand for a SKU, read its counts. */
export function createInventoryService(deps: {
  readonly inventory: InventoryRepository;
  readonly logger: Pick<Logger, 'info'>;
}) {
  const { inventory, logger } = deps;
  return {
    /** Sets `available` (creating the SKU's document when it is untracked) and returns the counts. */
    async setAvailable(sku: string, available: number, actor: string): Promise<StockLevel> {
      const level = await inventory.setAvailable(sku, available);
      logger.info({ sku, available, reserved: level.reserved, sold: level.sold, actor }, 'stock set');
      return level;
    },

    /** The SKU's counts; NOT_FOUND when it is untracked. */
    async get(sku: string): Promise<StockLevel> {
      const level = await inventory.find(sku);
      if (!level) throw new AppError('NOT_FOUND', `SKU ${sku} is not tracked in inventory`);
      return level;
    },
  };
}
