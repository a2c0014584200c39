import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';

/**
 * Addresses a webhook may not reach in production: loopback, private, link-local, CGNAT, unspecified,
 * multicast and reserved ranges, in IPv4 and IPv6 (IPv4-mapped IPv6 addresses are checked as IPv4).
 * Otherwise a configured URL turns the fleet into a probe of its own network (SSRF).
 */
const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** True when `ip` (a literal address) is loopback, private, link-local or otherwise not public. */
export function isNonPublicAddress(ip: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return blocked.check(mapped[1]!, 'ipv4');
  const family = isIP(ip);
  if (family === 4) return blocked.check(ip, 'ipv4');
  if (family === 6) return blocked.check(ip, 'ipv6');
  return true; // not an address at all: refuse rather than guess
}

/**
 * The checks on `WEBHOOK_URL` that need no network: in production the URL must be https (unless
 * `allowHttp`), and a host given as a literal address or as `localhost` must be public. Returns the
 * problems found (empty when none).
 */
export function webhookUrlProblems(url: string, options: { production: boolean; allowHttp: boolean }): string[] {
  if (!options.production) return [];
  const problems: string[] = [];
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && !options.allowHttp) {
    problems.push('WEBHOOK_URL must be https in production (or set WEBHOOK_ALLOW_HTTP=true)');
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost') || (isIP(host) !== 0 && isNonPublicAddress(host))) {
    problems.push('WEBHOOK_URL must not name a loopback, private or link-local address in production');
  }
  return problems;
}

/**
 * Resolves the webhook host and refuses it when any address it resolves to is not public (production
 * start-up). Delivery checks the address again on every connection (see the delivery's `lookup`), so a
 * DNS change after start cannot point the fleet inward either.
 */
export async function assertPublicWebhookHost(
  url: string,
  lookup: (host: string) => Promise<{ address: string }[]> = (host) => dnsLookup(host, { all: true }),
): Promise<void> {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) !== 0 ? [{ address: host }] : await lookup(host);
  const inward = addresses.filter((a) => isNonPublicAddress(a.address));
  if (addresses.length === 0 || inward.length > 0) {
    throw new Error(
      `WEBHOOK_URL host ${host} resolves to a loopback, private or link-local address (${inward.map((a) => a.address).join(', ')}); refused in production`,
    );
  }
}
