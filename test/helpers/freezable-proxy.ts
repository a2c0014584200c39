import { startTcpProxy } from './tcp-proxy.js';

/**
 * A TCP proxy in front of a real server that the test can freeze: while frozen, bytes stay unread in
 * both directions and new connections are accepted but not served, as with a server stopped by
 * SIGSTOP (sockets open, nothing answered). Listens on port 0.
 */
export async function startFreezableProxy(target: { host: string; port: number }) {
  let frozen = false;
  const proxy = await startTcpProxy(target, (client, upstream) => {
    // After pipe(), which resumes its source.
    if (frozen) for (const s of [client, upstream]) s.pause();
  });
  return {
    port: proxy.port,
    freeze() {
      frozen = true;
      for (const s of proxy.sockets) s.pause();
    },
    thaw() {
      frozen = false;
      for (const s of proxy.sockets) s.resume();
    },
    close: proxy.close,
  };
}
