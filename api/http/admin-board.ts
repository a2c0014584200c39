import { AsyncLocalStorage } from 'node:async_hooks';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { BoardHooks } from '@bull-board/api/typings/app';
import { KoaAdapter } from '@bull-board/koa';
import type { Job, Queue } from 'bullmq';
import type { Middleware } from 'koa';
import { AppError, ORDERS_QUEUE, type BoardAccount, type BoardRole, type ProcessOrderJobData } from '#common';
import type { AuditLog } from '../services/audit-service.js';
import { UNSAFE_METHODS, createBoardAuth, createBoardCredentials, type BoardIdentity } from './board-auth.js';
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

/** What the board's `before` hook learns of a request, for the audit and the role check around it. */
interface BoardRequestScope {
  readonly identity: BoardIdentity;
  route?: string;
  params?: Readonly<Record<string, string | undefined>>;
}

/** Queue-wide actions, named apart from the job actions of the same verb. */
const BULK_ACTIONS: Readonly<Record<string, string>> = {
  '/api/queues/pause': 'pause-all',
  '/api/queues/resume': 'resume-all',
  '/api/queues/:queueName/retry/:queueStatus': 'retry-all',
  '/api/queues/:queueName/promote': 'promote-all',
  '/api/queues/:queueName/clean/:queueStatus': 'clean-all',
  '/api/queues/:queueName/:jobId/clean': 'remove',
};

/** The audit's name of a board route: `board.retry`, `board.retry-all`, `board.pause`, `board.remove`… */
export function boardAction(route: string | undefined): string {
  if (!route) return 'board.change';
  const name =
    BULK_ACTIONS[route] ??
    route
      .split('/')
      .filter((s) => s && !s.startsWith(':') && s !== 'api' && s !== 'queues')
      .join('-');
  return `board.${name || 'change'}`;
}

/** How many failed jobs one read takes while a board "retry all" is marked. */
const MARK_PAGE = 100;

/**
 * Bull Board at /admin/queues: its own security headers (anti-framing first) on every response,
 * the per-address request limit (`limit`), basic auth with the brute-force guard (the shared login
 * and the named accounts), and the same-origin check. An `operator` gets the full board; a `viewer`
 * gets a second board whose queues are read-only (Bull Board's `readOnlyMode`), and any
 * state-changing call of a viewer is a 403 before any handler runs. Every state-changing call is
 * audited (who, route, queue, job, outcome); a retry of a dead order's job marks the job with the
 * operator, so the worker names them in the order's history. The JSON API is never cached and shows
 * no file-system paths. Returns one middleware that answers every path under the board.
 */
export function createAdminBoard(options: {
  readonly queues: readonly Queue[];
  readonly user?: string;
  readonly password?: string;
  readonly accounts: readonly BoardAccount[];
  readonly guard: AuthFailureGuard;
  readonly audit: AuditLog;
  readonly limit?: Middleware;
}): Middleware {
  const { audit } = options;
  const scope = new AsyncLocalStorage<BoardRequestScope>();
  const orders = options.queues.find((q) => q.name === ORDERS_QUEUE) as Queue<ProcessOrderJobData> | undefined;

  const mark = async (job: Job<ProcessOrderJobData> | undefined, by: string) => {
    if (job && (await job.getState()) === 'failed')
      await job.updateData({ ...job.data, retriedBy: { by, at: Date.now() } });
  };
  /** A retry of dead order jobs is marked with the operator first (the worker reads the mark). */
  async function markRetries(route: string, params: Readonly<Record<string, string | undefined>>, by: string) {
    if (!orders || params.queueName !== ORDERS_QUEUE) return;
    if (route === '/api/queues/:queueName/:jobId/retry' && params.jobId) {
      await mark(await orders.getJob(params.jobId), by);
    } else if (route === '/api/queues/:queueName/retry/:queueStatus' && params.queueStatus === 'failed') {
      for (let start = 0; ; start += MARK_PAGE) {
        const page = await orders.getFailed(start, start + MARK_PAGE - 1);
        await Promise.all(page.map((job) => mark(job, by)));
        if (page.length < MARK_PAGE) break;
      }
    }
  }

  const hooks: BoardHooks = {
    async before({ method, route, request }) {
      const current = scope.getStore();
      if (!current) return { allow: false };
      current.route = route;
      current.params = request.params;
      if (method === 'get') return undefined;
      if (current.identity.role !== 'operator') return { allow: false, status: 403 };
      await markRetries(route, request.params, current.identity.name);
      return undefined;
    },
  };
  const mount = (readOnlyMode: boolean) => {
    const serverAdapter = new KoaAdapter();
    serverAdapter.setBasePath(BOARD_PATH);
    createBullBoard({
      queues: options.queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode })),
      serverAdapter,
      options: { uiConfig: { boardTitle: readOnlyMode ? 'Orders (view only)' : 'Orders' }, handlerHooks: hooks },
    });
    return serverAdapter.registerPlugin();
  };
  const boards: Readonly<Record<BoardRole, Middleware>> = { operator: mount(false), viewer: mount(true) };
  const auth = createBoardAuth({
    check: createBoardCredentials({ user: options.user, password: options.password, accounts: options.accounts }),
    guard: options.guard,
  });
  const limit: Middleware = options.limit ?? ((_ctx, next) => next());

  return async (ctx, next) => {
    if (ctx.path !== BOARD_PATH && !ctx.path.startsWith(`${BOARD_PATH}/`)) return next();
    await boardSecurityHeaders(ctx, async () => {
      await limit(ctx, async () => {
        await auth(ctx, async (identity) => {
          const current: BoardRequestScope = { identity };
          const unsafe = UNSAFE_METHODS.has(ctx.method);
          const record = (outcome: 'done' | 'refused' | 'failed', status: number) =>
            audit.record({
              actor: identity.name,
              role: identity.role,
              source: 'board',
              action: boardAction(current.route),
              queue: current.params?.queueName,
              jobId: current.params?.jobId,
              path: `${ctx.method} ${ctx.path}`,
              outcome,
              status,
              requestId: (ctx.state as { requestId?: string }).requestId,
            });
          try {
            await scope.run(current, () => boards[identity.role](ctx, next));
          } catch (err) {
            if (unsafe) await record('failed', 500);
            throw err;
          }
          if (unsafe && identity.role !== 'operator') {
            await record('refused', 403);
            throw new AppError('FORBIDDEN', 'this dashboard account may only look (role viewer)', {
              details: [{ field: 'role', message: 'state-changing dashboard calls need an operator account' }],
            });
          }
          if (unsafe) await record(ctx.status < 400 ? 'done' : 'failed', ctx.status);
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
