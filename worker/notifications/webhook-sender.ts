import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { isNonPublicAddress } from '#common';

/** The Standard Webhooks headers of one delivery. */
export interface WebhookHeaders {
  readonly 'webhook-id': string;
  readonly 'webhook-timestamp': string;
  /** One `v1,<base64>` per secret, space-separated (rotation: a receiver accepts any it knows). */
  readonly 'webhook-signature': string;
}

/**
 * Signs a payload with every secret, through the `standardwebhooks` library (HMAC-SHA256 of
 * `id.timestamp.payload`), so what receivers verify is exactly what the specification says.
 */
export function createWebhookSigner(secrets: readonly string[]) {
  const signers = secrets.map((secret) => new Webhook(secret));
  return (webhookId: string, payload: string, at: Date = new Date()): WebhookHeaders => ({
    'webhook-id': webhookId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signers.map((s) => s.sign(webhookId, at, payload)).join(' '),
  });
}

/** What one attempt came to: the HTTP status, or `timeout` / `network` when none came back. */
export type DeliveryResult =
  { readonly status: number } | { readonly error: 'timeout' | 'network'; readonly cause: Error };

/**
 * A DNS lookup that refuses loopback, private and link-local answers (production): checked on every
 * connection, so a DNS change after the start-up check cannot turn deliveries inward.
 */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 4);
    const list = addresses as LookupAddress[];
    const inward = list.find((a) => isNonPublicAddress(a.address));
    if (inward || list.length === 0) {
      return callback(
        new Error(`webhook host ${hostname} resolves to non-public ${inward?.address ?? 'nothing'}`),
        '',
        4,
      );
    }
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
    return callback(null, list[0]!.address, list[0]!.family);
  });
};

/**
 * POSTs one signed event. Resolves with the status (the body is drained, never read into memory
 * beyond the socket buffer) or with `timeout` / `network`; never rejects. `timeoutMs` bounds the whole
 * attempt, connection included.
 */
export function createWebhookPoster(options: {
  readonly url: string;
  readonly timeoutMs: number;
  readonly publicOnly: boolean;
}) {
  const target = new URL(options.url);
  const client = target.protocol === 'https:' ? https : http;
  return (body: string, headers: WebhookHeaders): Promise<DeliveryResult> =>
    new Promise((resolve) => {
      let settled = false;
      const done = (result: DeliveryResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const req = client.request(
        target,
        {
          method: 'POST',
          headers: {
            ...headers,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'user-agent': 'orders-webhooks/1',
          },
          agent: false,
          ...(options.publicOnly ? { lookup: publicOnlyLookup } : {}),
        },
        (res) => {
          res.resume();
          res.on('error', () => undefined);
          done({ status: res.statusCode ?? 0 });
        },
      );
      const timer = setTimeout(() => {
        done({ error: 'timeout', cause: new Error(`no answer in ${options.timeoutMs} ms`) });
        req.destroy();
      }, options.timeoutMs);
      req.on('error', (err) => done({ error: 'network', cause: err }));
      req.end(body);
    });
}

/** The status class a metric carries: `2xx` … `5xx`, or `timeout` / `network`. */
export const statusClass = (result: DeliveryResult): string =>
  'status' in result ? `${Math.floor(result.status / 100)}xx` : result.error;
