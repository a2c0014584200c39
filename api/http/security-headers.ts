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

/**
 * The board's CSP: its page loads its own scripts, styles and images (inline styles, Google's
 * fonts), talks only to its own API, and may be framed by nobody (`frame-ancestors 'none'`).
 */
export const BOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline' https://fonts.googleapis.com",
  "font-src 'self' https://fonts.gstatic.com data:",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Headers for the dashboard (a page with scripts): set before anything below runs, so every response
 * under it — page, assets, JSON API, 401 and 429 — carries them. A framed board would let another
 * page steer an operator's clicks, which would then pass the same-origin check.
 */
export const boardSecurityHeaders: Middleware = async (ctx, next) => {
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Content-Security-Policy', BOARD_CSP);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
  ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
  ctx.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()');
  await next();
};
