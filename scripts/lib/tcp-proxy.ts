import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of one upstream port, that can cut the network without root:
 * {@link TcpProxy.cut} stops moving bytes both ways while every connection stays open (no FIN, no
 * RST), as a partition does, and new connections are accepted but go nowhere; {@link TcpProxy.heal}
 * moves them again. What a process behind it sees is silence, not an error.
 */
export interface TcpProxy {
  readonly port: number;
  readonly url: string;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(upstreamPort: number, scheme = 'redis'): Promise<TcpProxy> {
  let isCut = false;
  const pairs = new Set<readonly [Socket, Socket]>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: upstreamPort });
    const pair = [client, upstream] as const;
    pairs.add(pair);
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk) => {
        if (!to.write(chunk)) from.pause();
      });
      to.on('drain', () => {
        if (!isCut) from.resume();
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    // Paused sockets buffer in the kernel: nothing passes while cut, and nothing is lost or closed.
    if (isCut) {
      client.pause();
      upstream.pause();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    cut() {
      isCut = true;
      for (const [a, b] of pairs) {
        a.pause();
        b.pause();
      }
    },
    heal() {
      isCut = false;
      for (const [a, b] of pairs) {
        a.resume();
        b.resume();
      }
    },
    async close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
