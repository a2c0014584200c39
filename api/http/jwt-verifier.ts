import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { AppError, PUBLIC_SCOPE, type JwtConfig } from '#common';

/** What a verified token says about its bearer. */
export interface JwtIdentity {
  readonly clientId: string;
  readonly admin: boolean;
}

/** Verifies `Authorization: Bearer <JWT>` tokens; see {@link createJwtVerifier}. */
export interface JwtVerifier {
  /** The identity a valid token names; `undefined` for any invalid token; 503 when the JWKS cannot be read. */
  verify(token: string): Promise<JwtIdentity | undefined>;
}

/** A compact JWS (three base64url parts); anything else presented as Bearer is an API key. */
export const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Once fetched, keys are kept this long before they are refetched (rotation), in ms. */
const JWKS_CACHE_MAX_AGE_MS = 10 * 60_000;
/** A token naming an unknown `kid` refetches the set at most this often (a rotated-in key), in ms. */
const JWKS_COOLDOWN_MS = 30_000;
/** A JWKS endpoint slower than this fails the request with 503 instead of holding it, in ms. */
const JWKS_TIMEOUT_MS = 2000;

const CLIENT_ID = /^[\x21-\x7e]{1,128}$/;

/** The claim's values as a list: a space-separated `scope` string, or an array of roles. */
function claimValues(payload: JWTPayload, claim: string): string[] {
  const value = payload[claim];
  if (typeof value === 'string') return value.split(' ');
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

/** The JWKS endpoint did not answer, answered non-200, or sent no key set (fetch fails with a TypeError). */
function jwksUnavailable(err: unknown): boolean {
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return true;
  if (err instanceof errors.JOSEError) return err.code === errors.JOSEError.code;
  return err instanceof TypeError && err.message === 'fetch failed';
}

/**
 * JWTs issued by a gateway's identity provider, verified against its JWKS (jose's
 * `createRemoteJWKSet`: keys cached, refetched when a token names an unknown `kid`, at most once per
 * cooldown). The accepted algorithms are pinned (an `alg: none` token, or an HS256 token signed
 * with the public key, never verifies), issuer and audience must match, `exp` is required, and
 * `exp`/`nbf` are honoured within the configured clock skew. The client id comes from
 * `clientIdClaim`; admin rights from `adminValue` in the `scope` (space-separated) or `roles` claim.
 */
export function createJwtVerifier(config: JwtConfig): JwtVerifier {
  const jwks = createRemoteJWKSet(new URL(config.jwksUrl), {
    cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
    cooldownDuration: JWKS_COOLDOWN_MS,
    timeoutDuration: JWKS_TIMEOUT_MS,
  });
  return {
    async verify(token) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, jwks, {
          issuer: config.issuer,
          audience: config.audience,
          algorithms: [...config.algorithms],
          clockTolerance: config.clockSkewSeconds,
          requiredClaims: ['exp'],
        }));
      } catch (err) {
        // The identity provider's key set being unreadable is not the client's fault: 503, not 401.
        if (jwksUnavailable(err)) {
          throw new AppError('SERVICE_UNAVAILABLE', "the token issuer's keys cannot be read; retry later", {
            cause: err,
          });
        }
        return undefined;
      }
      const clientId = payload[config.clientIdClaim];
      if (typeof clientId !== 'string' || !CLIENT_ID.test(clientId) || clientId === PUBLIC_SCOPE) return undefined;
      const admin = ['scope', 'roles'].some((claim) => claimValues(payload, claim).includes(config.adminValue));
      return { clientId, admin };
    },
  };
}
