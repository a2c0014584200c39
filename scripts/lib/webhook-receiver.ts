import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** One request the receiver took, and what verifying it with `standardwebhooks` said. */
export interface ReceivedDelivery {
  readonly webhookId: string;
  readonly timestamp: string;
  readonly body: string;
  /** The parsed event when the signature verified; undefined when it did not. */
  readonly event: { type: string; timestamp: string; data: { id: string; status: string } } | undefined;
  readonly error: string | undefined;
  /** The status it answered. */
  readonly status: number;
  readonly at: number;
}

export interface WebhookReceiver {
  readonly url: string;
  readonly port: number;
  readonly deliveries: ReceivedDelivery[];
  close(): Promise<void>;
}

/**
 * A webhook receiver as a shop would write it: every request is verified with the `standardwebhooks`
 * library (signature and a 5-minute timestamp tolerance) before it is believed; an unverified one gets
 * 400. `respond` chooses the status of a verified delivery (default 204), for tests of retries and 410.
 */
export async function startWebhookReceiver(options: {
  readonly secret: string;
  readonly port?: number;
  readonly host?: string;
  readonly path?: string;
  readonly respond?: (delivery: { webhookId: string; count: number }) => number;
  readonly onDelivery?: (delivery: ReceivedDelivery) => void;
}): Promise<WebhookReceiver> {
  const verifier = new Webhook(options.secret);
  const deliveries: ReceivedDelivery[] = [];
  const counts = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]),
      );
      let event: ReceivedDelivery['event'];
      let error: string | undefined;
      try {
        event = verifier.verify(body, headers) as ReceivedDelivery['event'];
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
      const webhookId = headers['webhook-id'] ?? '';
      const count = (counts.get(webhookId) ?? 0) + 1;
      counts.set(webhookId, count);
      const status = event ? (options.respond?.({ webhookId, count }) ?? 204) : 400;
      const delivery = {
        webhookId,
        timestamp: headers['webhook-timestamp'] ?? '',
        body,
        event,
        error,
        status,
        at: Date.now(),
      };
      deliveries.push(delivery);
      options.onDelivery?.(delivery);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}${options.path ?? '/webhooks'}`,
    port,
    deliveries,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
