import { Router } from '@koa/router';
import { parseProfileRequest, profileDisposition, type Logger, type Profiler } from '#common';
import type { AppContext, AppState } from './app-state.js';
import { requireAdmin } from './auth.js';

/**
 * `POST /admin/profile?kind=cpu|heap&seconds=N` (admin only): a CPU profile of this api process for N
 * seconds, or a heap snapshot, as a download. One at a time per process (409 while one runs). Transport
 * only: the recording is common's profiler.
 */
export function createProfileRouter(deps: {
  readonly profiler: Profiler;
  readonly logger: Logger;
}): Router<AppState, AppContext> {
  const router = new Router<AppState, AppContext>();
  router.post('/admin/profile', requireAdmin, async (ctx) => {
    const request = parseProfileRequest(ctx.query);
    const profile = await deps.profiler.record(request);
    deps.logger.info(
      { kind: profile.kind, seconds: request.seconds, bytes: profile.body.length, clientId: ctx.state.client.id },
      'profile recorded',
    );
    ctx.set('Content-Disposition', profileDisposition(profile));
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'application/json';
    ctx.body = profile.body;
  });
  return router;
}
