import http from 'node:http';
import type { HttpResult } from '../helpers/api-http.js';

/**
 * One request from a given loopback address, so the api sees distinct client IPs (127.0.0.0/8 is
 * all local): an attacker's address and a legitimate client's are told apart.
 */
export function callFrom(
  baseUrl: string,
  localAddress: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<HttpResult<unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, baseUrl), { method, headers, localAddress, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') out.set(k, v);
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: out, body, text, ms: 0 });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
