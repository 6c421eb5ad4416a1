import type { Plugin } from 'graphql-yoga';
import { Scope } from '../auth/principal.js';
import type { ServerDeps } from '../schema/context.js';
import { checkpointFile } from '../services/checkpoints.js';
import type { KeyObject } from 'node:crypto';
import { keyIdOf, publicKeyPem } from '../shared/chain/checkpoint.js';
import { authorizeHttp, jsonResponse } from './http-auth.js';

export const CHECKPOINT_KEY_PATH = '/.well-known/auditql/checkpoint-key';
export const CHECKPOINT_FILE_PATH = '/checkpoints';

/**
 * `GET /.well-known/auditql/checkpoint-key`: the public key that checks checkpoints, for anyone (JSON: keyId,
 * algorithm, PEM and JWK; `previous`: the same for each key it replaced). `GET /checkpoints`: the caller's tenant's checkpoints as a file to keep elsewhere
 * (scope audit:admin, credentials in a header as for /graphql).
 */
export function useCheckpointEndpoints(deps: ServerDeps): Plugin {
  return {
    async onRequest({ url, request, endResponse, fetchAPI }) {
      if (url.pathname !== CHECKPOINT_KEY_PATH && url.pathname !== CHECKPOINT_FILE_PATH) return;
      const json = (status: number, body: unknown, headers: Record<string, string> = {}) => endResponse(jsonResponse(fetchAPI, status, body, headers));
      if (request.method !== 'GET') return json(405, { errors: [{ message: 'Use GET' }] }, { allow: 'GET' });
      const key = deps.checkpointKey;
      if (url.pathname === CHECKPOINT_KEY_PATH) {
        const describe = (publicKey: KeyObject, keyId: string) => ({ keyId, algorithm: 'Ed25519', pem: publicKeyPem(publicKey), jwk: { ...publicKey.export({ format: 'jwk' }), kid: keyId, alg: 'EdDSA', use: 'sig' } });
        // The keys it replaced too: checkpoints they signed are still to be checked by anyone.
        return json(200, { ...describe(key.publicKey, key.keyId), previous: (key.previous ?? []).map((k) => describe(k, keyIdOf(k))) });
      }
      const caller = await authorizeHttp(deps, request, fetchAPI, { test: (principal) => principal.scopes.has(Scope.Admin), refusal: 'Checkpoints need the audit:admin scope' });
      if ('response' in caller) return endResponse(caller.response);
      const { tenantId } = caller.principal;
      const file = await checkpointFile(deps.dataSource, key, tenantId);
      const name = `auditql-checkpoints-${tenantId.replace(/[^A-Za-z0-9._-]/g, '_')}-${new Date().toISOString().slice(0, 10)}.json`;
      return json(200, file, { 'content-disposition': `attachment; filename="${name}"`, 'cache-control': 'no-store' });
    },
  };
}
