import { GraphQLError } from 'graphql';
import type { DataSource } from 'typeorm';
import { ErrorCode } from '../shared/errors.js';
import { looksLikeApiKey, verifyApiKey } from './api-keys.js';
import { InvalidCredentials, type JwtVerifier } from './jwt.js';
import type { Principal } from './principal.js';
import { looksLikeViewerToken, verifyViewerToken } from './viewer-token.js';

export interface Credentials {
  /** `Authorization` header or connection parameter: `Bearer <jwt or api key>`. */
  authorization?: string | null;
  /** `x-api-key` header or connection parameter. */
  apiKey?: string | null;
}

export interface Authenticator {
  /** `null` when no credentials were sent; throws UNAUTHENTICATED when they are not valid. */
  authenticate(credentials: Credentials): Promise<Principal | null>;
}

export function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: ErrorCode.Unauthenticated, http: { status: 401 } } });
}

export function createAuthenticator(dataSource: DataSource, verifyJwt: JwtVerifier | null): Authenticator {
  return {
    async authenticate({ authorization, apiKey }) {
      let token = apiKey?.trim() || null;
      if (!token && authorization) {
        const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
        if (!match) throw unauthenticated('Send credentials as "Authorization: Bearer <token>" or "x-api-key: <key>"');
        token = match[1]!;
      }
      if (!token) return null;
      try {
        if (looksLikeApiKey(token)) return await verifyApiKey(dataSource, token);
        if (looksLikeViewerToken(token)) return await verifyViewerToken(dataSource, token);
        if (!verifyJwt) throw new InvalidCredentials('This server accepts API keys only (no JWT_SECRET or JWKS_URL is set)');
        return await verifyJwt(token);
      } catch (error) {
        if (error instanceof InvalidCredentials) throw unauthenticated(error.message);
        throw error;
      }
    },
  };
}
