import type { Middleware } from 'koa';

/**
 * Headers for a JSON API: no MIME sniffing, no framing, no caching of order data, no referrer, and
 * a CSP that lets nothing load (responses are data, never pages). The dashboard sets its own.
 */
export const securityHeaders: Middleware = async (ctx, next) => {
  ctx.set('Cache-Control', 'no-store');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
  await next();
};
