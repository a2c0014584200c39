import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** What a dashboard account may do: an `operator` acts (retry, clean, pause…), a `viewer` only looks. */
export const BOARD_ROLES = ['operator', 'viewer'] as const;
export type BoardRole = (typeof BOARD_ROLES)[number];

/** A named dashboard account from `BULL_BOARD_USERS`. The password is kept only as its scrypt hash. */
export interface BoardAccount {
  readonly name: string;
  readonly role: BoardRole;
  /** `scrypt$N$r$p$<salt>$<key>` (base64url), as `npm run board:hash-password` prints it. */
  readonly passwordHash: string;
}

/** The scrypt cost of new hashes: N = 2^14, r = 8, p = 1 (16 MiB, tens of milliseconds), a 32-byte key. */
const COST = { N: 16_384, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** The hash format (a 16-byte salt, a 32-byte key); the cost is stored with each hash, so it can be raised without breaking old ones. */
export const BOARD_PASSWORD_HASH =
  /^scrypt\$(\d{4,7})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]{22})\$([A-Za-z0-9_-]{43})$/;
/** A hash this module can check: the format, and a cost scrypt takes within our memory bound (N a power of two, 2^10–2^17, r ≤ 16, p ≤ 16). */
function isUsableHash(hash: string): boolean {
  const m = BOARD_PASSWORD_HASH.exec(hash);
  if (!m) return false;
  const [n, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return n >= 1024 && n <= 131_072 && (n & (n - 1)) === 0 && r >= 1 && r <= 16 && p >= 1 && p <= 16;
}

/** One `BULL_BOARD_USERS` entry: `name:role:hash`. */
const ENTRY = /^([A-Za-z0-9_.@-]{1,64}):(operator|viewer):(scrypt\$[^:,\s]+)$/;

function derive(password: string, salt: Buffer, bytes: number, cost: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem above 128·N·r, so the stored cost (up to the format's bounds) is accepted.
    scrypt(password, salt, bytes, { ...cost, maxmem: 256 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** Hashes a dashboard password for `BULL_BOARD_USERS` (Node's scrypt, a random salt). */
export async function hashBoardPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, KEY_BYTES, COST);
  return `scrypt$${COST.N}$${COST.r}$${COST.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** True when `password` matches `hash`; the keys are compared in constant time. A malformed hash never matches. */
export async function verifyBoardPassword(password: string, hash: string): Promise<boolean> {
  const m = BOARD_PASSWORD_HASH.exec(hash);
  if (!m || !isUsableHash(hash)) return false;
  const [, n, r, p, salt, key] = m;
  const expected = Buffer.from(key, 'base64url');
  const actual = await derive(password, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return timingSafeEqual(actual, expected);
}

/**
 * Parses `BULL_BOARD_USERS` (comma-separated `name:role:hash`): the accounts, or the problems (each
 * names the entry by position, never its text, which holds a hash).
 */
export function parseBoardAccounts(raw: string | undefined): { accounts: readonly BoardAccount[]; problems: string[] } {
  if (!raw) return { accounts: Object.freeze([]), problems: [] };
  const problems: string[] = [];
  const accounts: BoardAccount[] = [];
  raw.split(',').forEach((entry, i) => {
    const m = ENTRY.exec(entry.trim());
    const hash = m?.[3];
    if (!m || !hash || !isUsableHash(hash)) {
      problems.push(
        `BULL_BOARD_USERS entry ${i + 1} must be name:operator|viewer:scrypt$… (make the hash with npm run board:hash-password)`,
      );
      return;
    }
    if (accounts.some((a) => a.name === m[1])) problems.push(`BULL_BOARD_USERS names ${m[1]} twice`);
    accounts.push(Object.freeze({ name: m[1], role: m[2] as BoardRole, passwordHash: hash }));
  });
  return { accounts: Object.freeze(accounts), problems };
}
