import { createVerifier, TokenError } from 'fast-jwt';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { LRUCache } from 'lru-cache';
import { parseScopes, type Principal } from './principal.js';

export interface JwtConfig {
  /** HS256 shared secret. */
  secret?: string;
  /** RS256/ES256 keys from a JSON Web Key Set. */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** @default 'tenant' */
  tenantClaim: string;
  /** The tenant of tokens that name none. Unset, such tokens are refused. */
  defaultTenant?: string;
  /** Longest `exp - iat` accepted, in seconds. @default 86400 */
  maxLifetimeSeconds?: number;
  /** `false`: tokens without `exp` are accepted and expire `maxLifetimeSeconds` after `iat`. @default true */
  requireExp?: boolean;
}

export class InvalidCredentials extends Error {}

export type JwtVerifier = (token: string) => Promise<Principal>;

/** `sub` becomes the author id: a non-empty string, or a number written as its JSON text (`12345`). */
function subjectOf(sub: unknown): string {
  if (typeof sub === 'string' && sub.trim() !== '' && sub.length <= 255) return sub;
  if (typeof sub === 'number' && Number.isFinite(sub)) return JSON.stringify(sub);
  throw new InvalidCredentials('The token\'s "sub" claim must be a non-empty string');
}

/**
 * The tenant claim must be a non-empty string. Only an explicitly configured default stands in for a
 * missing or empty one; a claim of another type is malformed and always refused.
 */
function tenantOf(payload: JWTPayload, config: JwtConfig): string {
  const claim = payload[config.tenantClaim];
  if (typeof claim === 'string' && claim.trim() !== '' && claim.length <= 128) return claim;
  if ((claim === undefined || claim === null || claim === '') && config.defaultTenant) return config.defaultTenant;
  throw new InvalidCredentials(`The token's "${config.tenantClaim}" claim must name a tenant`);
}

/**
 * When the token stops being valid (epoch ms). Its lifetime is bounded, so a leaked token cannot be a
 * key for years: `exp - iat` (or `exp - now` without `iat`) at most `maxLifetimeSeconds`.
 */
function expiryOf(payload: JWTPayload, config: JwtConfig): number | null {
  const max = config.maxLifetimeSeconds ?? 24 * 3600;
  const now = Math.floor(Date.now() / 1000);
  if (payload.exp === undefined) {
    if (config.requireExp !== false) throw new InvalidCredentials('The token has no "exp" claim');
    return payload.iat === undefined ? null : (payload.iat + max) * 1000;
  }
  const issued = payload.iat ?? now;
  if (payload.exp - issued > max) throw new InvalidCredentials(`The token is valid for longer than ${max} s (MAX_TOKEN_LIFETIME)`);
  return payload.exp * 1000;
}

/**
 * Verified tokens are remembered by their exact text (signature included), so that a client sending the
 * same token with every request is not verified again each time (measured: ≈ 75–100 µs of CPU per HS256
 * verification, as much as graphql-yoga's whole floor per request). An entry lives until the token
 * expires, and at most VERIFIED_TTL_MS, so that a key withdrawn from a JWKS stops working within that
 * time. JWTs have no revocation of their own here (API keys do: api-keys.ts); the bound is what limits
 * how long a cached principal outlives a change of keys.
 */
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;

/** Verifies bearer JWTs (HS256 with fast-jwt, JWKS keys with jose) and maps their claims to a principal. */
export function createJwtVerifier(config: JwtConfig): JwtVerifier | null {
  const verify = createUncachedJwtVerifier(config);
  if (!verify) return null;
  const verified = new LRUCache<string, Principal>({ max: VERIFIED_MAX });
  return async (token) => {
    const remembered = verified.get(token);
    if (remembered) {
      if (remembered.expiresAt === null || remembered.expiresAt > Date.now()) return remembered;
      verified.delete(token);
      throw new InvalidCredentials('The token has expired');
    }
    const principal = await verify(token);
    const ttl = Math.min(VERIFIED_TTL_MS, principal.expiresAt === null ? VERIFIED_TTL_MS : principal.expiresAt - Date.now());
    if (ttl > 0) verified.set(token, principal, { ttl });
    return principal;
  };
}

function createUncachedJwtVerifier(config: JwtConfig): JwtVerifier | null {
  let verifyToken: (token: string) => Promise<JWTPayload>;
  if (config.jwksUrl) {
    const remote = createRemoteJWKSet(new URL(config.jwksUrl));
    const options: JWTVerifyOptions = { algorithms: ['RS256', 'ES256'], issuer: config.issuer, audience: config.audience, requiredClaims: ['sub'] };
    verifyToken = async (token) => {
      try {
        return (await jwtVerify(token, remote, options)).payload;
      } catch (error) {
        if (error instanceof errors.JWTExpired) throw new InvalidCredentials('The token has expired');
        throw new InvalidCredentials('The token is not valid');
      }
    };
  } else if (config.secret) {
    // HS256 through fast-jwt, which computes the HMAC with node:crypto (~8 µs per token, measured): jose
    // has only WebCrypto's, ~55–80 µs with its promises, and every request with a new token pays it.
    const verify = createVerifier({
      key: Buffer.from(config.secret, 'utf8'),
      algorithms: ['HS256'],
      allowedIss: config.issuer,
      allowedAud: config.audience,
      requiredClaims: ['sub'],
      cache: false,
    });
    verifyToken = async (token) => {
      try {
        const payload: unknown = verify(token);
        if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw new InvalidCredentials('The token is not valid');
        return payload as JWTPayload;
      } catch (error) {
        if (error instanceof TokenError && error.code === TokenError.codes.expired) throw new InvalidCredentials('The token has expired');
        throw new InvalidCredentials('The token is not valid');
      }
    };
  } else {
    return null;
  }
  return async (token) => {
    const payload = await verifyToken(token);
    const expiresAt = expiryOf(payload, config);
    if (expiresAt !== null && expiresAt <= Date.now()) throw new InvalidCredentials('The token has expired');
    return {
      id: subjectOf(payload.sub),
      name: typeof payload.name === 'string' ? payload.name : null,
      type: 'user',
      scopes: parseScopes(payload.scope),
      tenantId: tenantOf(payload, config),
      expiresAt,
      via: 'jwt',
    };
  };
}
