import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { Queue } from 'bullmq';
import type { Middleware } from 'koa';
import { createBoardAuth } from './board-auth.js';
import type { AuthFailureGuard } from './rate-limit.js';
import { boardSecurityHeaders } from './security-headers.js';

export const BOARD_PATH = '/admin/queues';

/** An absolute file-system path in a stack frame (`/srv/app/dist/x.js:1:2`, `file:///…`, `C:\…`). */
const FILE_PATH = /(?:file:\/\/)?(?:[A-Za-z]:)?(?:[\\/][^\s()\\/:]+)*[\\/]([^\s()\\/:]+:\d+(?::\d+)?)/g;

/** The text with every file path in it cut to the file's name (`x.js:1:2`). */
export function stripFilePaths(text: string): string {
  return text.replace(FILE_PATH, '$1');
}

/**
 * What the board's JSON API returns, with file-system paths cut out of every string (stack traces,
 * failed reasons) and the Redis host's operating system left out: the board shows what went wrong,
 * the logs keep the full trace.
 */
function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return stripFilePaths(value);
  if (depth > 32 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'os') continue;
    out[k] = redact(v, depth + 1);
  }
  return out;
}

function isPlainJson(body: unknown): body is object {
  return (
    body !== null &&
    typeof body === 'object' &&
    !Buffer.isBuffer(body) &&
    typeof (body as { pipe?: unknown }).pipe !== 'function'
  );
}

/**
 * Bull Board at /admin/queues: its own security headers (anti-framing first) on every response,
 * the per-address request limit (`limit`), basic auth with the brute-force guard, and the
 * same-origin check. Its JSON API is never cached and shows no file-system paths. Returns one
 * middleware that answers every path under the board (and passes everything else on).
 */
export function createAdminBoard(options: {
  readonly queues: readonly Queue[];
  readonly user: string;
  readonly password: string;
  readonly guard: AuthFailureGuard;
  readonly limit?: Middleware;
}): Middleware {
  const serverAdapter = new KoaAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  createBullBoard({
    queues: options.queues.map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Orders' } },
  });
  const board = serverAdapter.registerPlugin();
  const auth = createBoardAuth({ user: options.user, password: options.password, guard: options.guard });
  const limit: Middleware = options.limit ?? ((_ctx, next) => next());
  return async (ctx, next) => {
    if (ctx.path !== BOARD_PATH && !ctx.path.startsWith(`${BOARD_PATH}/`)) return next();
    await boardSecurityHeaders(ctx, async () => {
      await limit(ctx, async () => {
        await auth(ctx, async () => {
          await board(ctx, next);
          if (ctx.path.startsWith(`${BOARD_PATH}/api/`)) {
            ctx.set('Cache-Control', 'no-store');
            if (isPlainJson(ctx.body)) {
              ctx.body = redact(ctx.body);
            }
          }
        });
      });
    });
  };
}
