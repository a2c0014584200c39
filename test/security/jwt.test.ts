import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { startTestApi, type TestApi } from '../helpers/api.js';
import { assertError, call, validOrder } from '../helpers/api-http.js';

/*
 * `Authorization: Bearer <JWT>` next to API keys, verified against a JWKS this test serves itself
 * on 127.0.0.1 (keys made with jose): a valid token is a client (admin by scope), every bad one 401.
 */

const ISSUER = 'https://idp.test/';
const AUDIENCE = 'orders-api';
const API_KEY = randomBytes(32).toString('base64url');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

let api: TestApi;
let jwksServer: http.Server;
let jwksFetches = 0;
const keys: { rsa?: SigningKey; ec?: SigningKey; other?: SigningKey; rsaPublicPem?: string } = {};
const published: JWK[] = [];

test.before(async () => {
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const ec = await generateKeyPair('ES256', { extractable: true });
  const other = await generateKeyPair('RS256', { extractable: true });
  keys.rsa = rsa.privateKey;
  keys.ec = ec.privateKey;
  keys.other = other.privateKey;
  published.push(
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
  );
  jwksServer = http.createServer((_req, res) => {
    jwksFetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const { port } = jwksServer.address() as AddressInfo;
  api = await startTestApi('sec_jwt', {
    API_KEYS: `shop-key:${sha256(API_KEY)}`,
    JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    JWT_CLIENT_ID_CLAIM: 'shop_id',
    JWT_ADMIN_SCOPE: 'orders:admin',
    JWT_CLOCK_SKEW_SECONDS: '5',
    RATE_LIMIT_PER_MINUTE: '0',
    AUTH_FAILURE_LIMIT: '0',
  });
});

test.after.always(async () => {
  await api?.close();
  await new Promise<void>((resolve) => jwksServer?.close(() => resolve()));
});

const now = () => Math.floor(Date.now() / 1000);

function token(
  claims: Record<string, unknown> = {},
  options: {
    key?: SigningKey;
    alg?: string;
    kid?: string;
    iss?: string;
    aud?: string;
    exp?: number;
    nbf?: number;
  } = {},
): Promise<string> {
  const jwt = new SignJWT({ shop_id: 'shop-jwt', scope: 'orders:read', ...claims })
    .setProtectedHeader({ alg: options.alg ?? 'RS256', kid: options.kid ?? 'rsa-1' })
    .setIssuer(options.iss ?? ISSUER)
    .setAudience(options.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? now() + 300);
  if (options.nbf !== undefined) jwt.setNotBefore(options.nbf);
  return jwt.sign(options.key ?? keys.rsa!);
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

test.serial('when a valid RS256 or ES256 token is presented, then its claim names the client', async (t) => {
  const created = await call(api, 'POST', '/orders', { json: validOrder(), headers: bearer(await token()) });
  t.is(created.status, 201, created.text);
  const ec = await token({}, { key: keys.ec, alg: 'ES256', kid: 'ec-1' });
  const listed = await call<{ items: Array<{ id: string }> }>(api, 'GET', '/orders', { headers: bearer(ec) });
  t.is(listed.status, 200, listed.text);
  t.true(
    listed.body.items.some((o) => o.id === (created.body as { id: string }).id),
    'same client, same orders',
  );
  const byKey = await call<{ items: unknown[] }>(api, 'GET', '/orders', { headers: bearer(API_KEY) });
  t.is(byKey.status, 200, 'API keys still work next to JWTs');
  t.is(byKey.body.items.length, 0, 'another client sees none of them');
});

test.serial('when a token carries the admin scope, then the admin routes answer; without it, 401', async (t) => {
  t.is(
    (await call(api, 'GET', '/dlq', { headers: bearer(await token({ scope: 'orders:read orders:admin' })) })).status,
    200,
  );
  t.is((await call(api, 'GET', '/dlq', { headers: bearer(await token({ roles: ['orders:admin'] })) })).status, 200);
  assertError(t, await call(api, 'GET', '/dlq', { headers: bearer(await token()) }), {
    status: 401,
    code: 'UNAUTHORIZED',
  });
});

const BAD: ReadonlyArray<readonly [string, () => Promise<string>]> = [
  ['expired', () => token({}, { exp: now() - 60 })],
  ['not yet valid', () => token({}, { nbf: now() + 120 })],
  ['for another audience', () => token({}, { aud: 'someone-else' })],
  ['from another issuer', () => token({}, { iss: 'https://evil.test/' })],
  ['signed by a key of unknown kid', () => token({}, { key: keys.other, kid: 'rotated-away' })],
  ['signed by another key under a known kid', () => token({}, { key: keys.other, kid: 'rsa-1' })],
  ['without a client id claim', () => token({ shop_id: undefined })],
  ['naming the reserved public client', () => token({ shop_id: 'public' })],
  [
    'alg none',
    async () =>
      `${b64url({ alg: 'none', kid: 'rsa-1' })}.${b64url({ shop_id: 'x', iss: ISSUER, aud: AUDIENCE, exp: now() + 300 })}.`,
  ],
  [
    'HS256 signed with the public key (key confusion)',
    async () => {
      const { createHmac, createPublicKey } = await import('node:crypto');
      const pem = createPublicKey({ key: published[0] as never, format: 'jwk' }).export({
        type: 'spki',
        format: 'pem',
      });
      const head = `${b64url({ alg: 'HS256', kid: 'rsa-1' })}.${b64url({ shop_id: 'x', iss: ISSUER, aud: AUDIENCE, exp: now() + 300 })}`;
      return `${head}.${createHmac('sha256', pem).update(head).digest('base64url')}`;
    },
  ],
  [
    'a tampered payload',
    async () => {
      const [h, , s] = (await token()).split('.');
      return `${h}.${b64url({ shop_id: 'shop-other', iss: ISSUER, aud: AUDIENCE, exp: now() + 300 })}.${s}`;
    },
  ],
];

for (const [label, make] of BAD) {
  test.serial(`when a token is ${label}, then 401 with an invalid_token challenge`, async (t) => {
    const res = await call(api, 'GET', '/orders', { headers: bearer(await make()) });
    assertError(t, res, { status: 401, code: 'UNAUTHORIZED' }, label);
    t.regex(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });
}

test.serial('when the issuer rotates in a new key, then tokens signed with it verify after one refetch', async (t) => {
  const next = await generateKeyPair('ES256', { extractable: true });
  published.push({ ...(await exportJWK(next.publicKey)), kid: 'ec-2', alg: 'ES256', use: 'sig' });
  const before = jwksFetches;
  // jose refetches for an unknown kid at most once per cooldown (30 s); wait it out if needed.
  const rotated = await token({}, { key: next.privateKey, alg: 'ES256', kid: 'ec-2' });
  let res = await call(api, 'GET', '/orders', { headers: bearer(rotated) });
  for (let i = 0; res.status === 401 && i < 35; i += 1) {
    await new Promise((r) => setTimeout(r, 1000));
    res = await call(api, 'GET', '/orders', { headers: bearer(rotated) });
  }
  t.is(res.status, 200, res.text);
  t.true(jwksFetches > before, 'the key set was fetched again');
});
