import { createHash, randomUUID } from 'node:crypto';

/** The idempotency scope of unauthenticated callers (docs/design.md, "Identity and idempotency"). */
export const PUBLIC_SCOPE = 'public';

/** An order id: `ord_` + 32 lowercase hex. The one pattern the api's validation and its documents use. */
export const ORDER_ID_PATTERN = /^ord_[0-9a-f]{32}$/;

/** `Idempotency-Key`: 1–255 visible ASCII characters. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** Deterministic order id for an idempotency key: `ord_` + 32 hex of sha256(scope + "\n" + key). */
export function orderIdFromKey(scope: string, key: string): string {
  return `ord_${createHash('sha256').update(`${scope}\n${key}`).digest('hex').slice(0, 32)}`;
}

/** `ord_` + 32 hex from a random UUID (122 random bits; node pools its entropy, so this is cheap). */
export function randomOrderId(): string {
  return `ord_${randomUUID().replaceAll('-', '')}`;
}

export function isOrderId(value: string): boolean {
  return ORDER_ID_PATTERN.test(value);
}

/**
 * JSON with object keys sorted at every depth, so two bodies that differ only in key order (or
 * whitespace) have one fingerprint. Arrays keep their order: item order is part of the request.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** sha256 of the canonical JSON of a request body. */
export function fingerprint(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}
