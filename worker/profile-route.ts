import {
  AppError,
  createApiKeyMatcher,
  parseProfileRequest,
  profileDisposition,
  sendAppError,
  type ApiKey,
  type Logger,
  type MetricsServerRoute,
  type Profiler,
} from '#common';

const PATH = '/admin/profile';
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/i;

/**
 * `POST /admin/profile?kind=cpu|heap&seconds=N` on the worker's metrics port: a CPU profile or a heap
 * snapshot of this worker process, as a download. The worker has no API of its own, so it takes the
 * api's admin credentials: an `Authorization: Bearer <key>` whose key is marked `:admin` in `API_KEYS`
 * (JWTs are not verified here). With authentication off (`auth.enabled` false: development) it is open,
 * as the api's admin routes are. One profile at a time per process (409).
 */
export function createProfileRoute(deps: {
  readonly profiler: Profiler;
  readonly auth: { readonly enabled: boolean; readonly keys: readonly ApiKey[] };
  readonly logger: Logger;
}): MetricsServerRoute {
  const matchKey = createApiKeyMatcher(deps.auth.keys.filter((key) => key.admin));

  const authorize = (header: string | undefined): string => {
    if (!deps.auth.enabled) return 'public';
    const presented = BEARER.exec(header ?? '')?.[1];
    const key = presented === undefined ? undefined : matchKey(presented);
    if (!key) throw new AppError('UNAUTHORIZED', 'this route needs an admin API key (Authorization: Bearer <key>)');
    return key.clientId;
  };

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://worker');
    if (url.pathname !== PATH) return false;
    void (async () => {
      try {
        if (req.method !== 'POST') throw new AppError('METHOD_NOT_ALLOWED', `${PATH} takes POST`);
        const clientId = authorize(req.headers.authorization);
        const request = parseProfileRequest(Object.fromEntries(url.searchParams));
        const profile = await deps.profiler.record(request);
        deps.logger.info(
          { kind: profile.kind, seconds: request.seconds, bytes: profile.body.length, clientId },
          'profile recorded',
        );
        res.writeHead(200, {
          'Content-Type': 'application/json',
          'Content-Disposition': profileDisposition(profile),
          'Cache-Control': 'no-store',
        });
        res.end(profile.body);
      } catch (err) {
        const appError = err instanceof AppError ? err : new AppError('INTERNAL_ERROR', 'internal error');
        if (appError.code === 'INTERNAL_ERROR') deps.logger.error({ err }, 'profile failed');
        const headers: Record<string, string> =
          appError.code === 'UNAUTHORIZED' ? { 'WWW-Authenticate': 'Bearer realm="orders"' } : {};
        if (appError.code === 'METHOD_NOT_ALLOWED') headers.Allow = 'POST';
        sendAppError(res, appError, headers);
      }
    })();
    return true;
  };
}
