import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { AppError, STATUS_BY_CODE } from '../errors/app-error.js';

/** A route of the metrics server: answers `req` and returns true, or returns false to leave it to the next. */
export type MetricsServerRoute = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Answers with the api's error body (`{ error: { code, message, details } }`) and the code's status. */
export function sendAppError(res: ServerResponse, err: AppError, headers: Record<string, string> = {}): void {
  res.writeHead(STATUS_BY_CODE[err.code], { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify({ error: { code: err.code, message: err.message, details: err.details } }));
}

/**
 * A bare HTTP server for `GET /metrics` from `registry`, for the processes without Koa (the worker, the
 * health process). `otherRoutes` may answer other requests; the rest get the api's 404 body.
 */
export function createMetricsServer(registry: Registry, otherRoutes?: MetricsServerRoute): Server {
  return createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
          res.end(body);
        },
        () => res.writeHead(500).end(),
      );
      return;
    }
    if (otherRoutes?.(req, res)) return;
    sendAppError(res, new AppError('NOT_FOUND', `no route for ${req.method} ${req.url}`));
  });
}
