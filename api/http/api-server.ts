import { createServer, type RequestListener, type Server } from 'node:http';

/** Socket bounds against slow clients (slowloris): set explicitly rather than trusting defaults. */
export const SERVER_TIMEOUTS = Object.freeze({
  /** The whole header block must arrive within this. */
  headersTimeoutMs: 10_000,
  /** The whole request (headers and body) must arrive within this. */
  requestTimeoutMs: 30_000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 5_000,
});

/**
 * The api's HTTP server with those bounds. Node checks them every `connectionsCheckingInterval`.
 * `keepAliveTimeoutMs` (HTTP_KEEPALIVE_TIMEOUT_MS) replaces the default idle bound: behind a load
 * balancer it must exceed the balancer's own idle timeout, or the server closes connections under it.
 */
export function createApiServer(
  listener: RequestListener,
  options: { readonly keepAliveTimeoutMs?: number } = {},
): Server {
  const server = createServer(
    {
      headersTimeout: SERVER_TIMEOUTS.headersTimeoutMs,
      requestTimeout: SERVER_TIMEOUTS.requestTimeoutMs,
      connectionsCheckingInterval: 1000,
    },
    listener,
  );
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? SERVER_TIMEOUTS.keepAliveTimeoutMs;
  server.maxHeadersCount = 100;
  return server;
}
