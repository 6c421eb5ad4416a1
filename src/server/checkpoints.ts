import type { Plugin } from 'graphql-yoga';
import { Scope } from '../auth/principal.js';
import type { ServerDeps } from '../schema/context.js';
import { checkpointFile } from '../services/checkpoints.js';
import { publicKeyPem } from '../shared/chain/checkpoint.js';
import { ErrorCode } from '../shared/errors.js';

export const CHECKPOINT_KEY_PATH = '/.well-known/auditql/checkpoint-key';
export const CHECKPOINT_FILE_PATH = '/checkpoints';

/**
 * `GET /.well-known/auditql/checkpoint-key`: the public key that checks checkpoints, for anyone (JSON: keyId,
 * algorithm, PEM and JWK). `GET /checkpoints`: the caller's tenant's checkpoints as a file to keep elsewhere
 * (scope audit:admin, credentials in a header as for /graphql).
 */
export function useCheckpointEndpoints(deps: ServerDeps): Plugin {
  return {
    async onRequest({ url, request, endResponse, fetchAPI }) {
      if (url.pathname !== CHECKPOINT_KEY_PATH && url.pathname !== CHECKPOINT_FILE_PATH) return;
      const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
        endResponse(new fetchAPI.Response(JSON.stringify(body, null, 2), { status, headers: { 'content-type': 'application/json', ...headers } }));
      if (request.method !== 'GET') return json(405, { errors: [{ message: 'Use GET' }] }, { allow: 'GET' });
      const key = deps.checkpointKey;
      if (url.pathname === CHECKPOINT_KEY_PATH) {
        return json(200, { keyId: key.keyId, algorithm: 'Ed25519', pem: publicKeyPem(key.publicKey), jwk: { ...key.publicKey.export({ format: 'jwk' }), kid: key.keyId, alg: 'EdDSA', use: 'sig' } });
      }
      const principal = await deps.auth.authenticate({ authorization: request.headers.get('authorization'), apiKey: request.headers.get('x-api-key') }).catch(() => null);
      if (!principal) return json(401, { errors: [{ message: 'Send credentials: "Authorization: Bearer <token>" or "x-api-key: <key>"', extensions: { code: ErrorCode.Unauthenticated } }] });
      if (!principal.scopes.has(Scope.Admin)) return json(403, { errors: [{ message: 'Checkpoints need the audit:admin scope', extensions: { code: ErrorCode.Forbidden } }] });
      const file = await checkpointFile(deps.dataSource, key, principal.tenantId);
      const name = `auditql-checkpoints-${principal.tenantId.replace(/[^A-Za-z0-9._-]/g, '_')}-${new Date().toISOString().slice(0, 10)}.json`;
      return json(200, file, { 'content-disposition': `attachment; filename="${name}"`, 'cache-control': 'no-store' });
    },
  };
}
