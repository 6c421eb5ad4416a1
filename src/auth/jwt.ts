import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { DEFAULT_TENANT } from '../shared/tenant.js';
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
}

export class InvalidCredentials extends Error {}

export type JwtVerifier = (token: string) => Promise<Principal>;

/** Verifies bearer JWTs with jose and maps their claims to a principal. */
export function createJwtVerifier(config: JwtConfig): JwtVerifier | null {
  let key: Uint8Array | JWTVerifyGetKey;
  let algorithms: string[];
  if (config.jwksUrl) {
    key = createRemoteJWKSet(new URL(config.jwksUrl));
    algorithms = ['RS256', 'ES256'];
  } else if (config.secret) {
    key = new TextEncoder().encode(config.secret);
    algorithms = ['HS256'];
  } else {
    return null;
  }
  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key as Uint8Array, { algorithms, issuer: config.issuer, audience: config.audience, requiredClaims: ['sub', 'exp'] }));
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw new InvalidCredentials('The token has expired');
      throw new InvalidCredentials('The token is not valid');
    }
    const tenant = payload[config.tenantClaim];
    return {
      id: payload.sub!,
      name: typeof payload.name === 'string' ? payload.name : null,
      type: 'user',
      scopes: parseScopes(payload.scope),
      tenantId: typeof tenant === 'string' && tenant !== '' ? tenant : DEFAULT_TENANT,
      expiresAt: payload.exp! * 1000,
      via: 'jwt',
    };
  };
}
