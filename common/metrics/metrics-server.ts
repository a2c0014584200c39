import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * A bare HTTP server for `GET /metrics` from `registry`, for the processes without Koa (the worker, the
 * health process). `otherRoutes` answers every other request; without it they get the api's 404 body.
 */
export function createMetricsServer(
  registry: Registry,
  otherRoutes?: (req: IncomingMessage, res: ServerResponse) => void,
): Server {
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
    if (otherRoutes) return otherRoutes(req, res);
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(
      JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${req.url}`, details: [] } }),
    );
  });
}
