import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { Queue } from 'bullmq';
import type { Middleware } from 'koa';
import { createBoardAuth } from './board-auth.js';

export const BOARD_PATH = '/admin/queues';

/**
 * Bull Board at /admin/queues, behind basic auth and the same-origin check. Returns one middleware
 * that answers every path under the board (and passes everything else on).
 */
export function createAdminBoard(options: {
  readonly queues: readonly Queue[];
  readonly user: string;
  readonly password: string;
}): Middleware {
  const serverAdapter = new KoaAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  createBullBoard({
    queues: options.queues.map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Orders' } },
  });
  const board = serverAdapter.registerPlugin();
  const auth = createBoardAuth({ user: options.user, password: options.password });
  return async (ctx, next) => {
    if (ctx.path !== BOARD_PATH && !ctx.path.startsWith(`${BOARD_PATH}/`)) return next();
    await auth(ctx, async () => {
      await board(ctx, next);
    });
  };
}
