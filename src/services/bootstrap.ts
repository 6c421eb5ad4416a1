import type { DataSource } from 'typeorm';
import type { AuthConfig } from '../config.js';
import { ApiKey } from '../db/entities/api-key.entity.js';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import { Scope } from '../auth/principal.js';
import { countActiveApiKeys, createApiKey } from './api-keys.js';

/** The server cannot accept anyone: it must not start, and must not quietly let someone in either. */
export class NoCredentialsError extends Error {}

/**
 * Secure by default, still one command: a server with no JWT configuration starting on a *fresh*
 * database (no key ever made, no entry ever written) creates one admin key and prints it once.
 *
 * On a database that has been used, it never mints one: a server whose keys were all revoked, or which
 * ran with JWTs before and lost its JWT_SECRET, refuses to start and says how to make a key — printing
 * a new admin key there would hand the log to whoever reads the process output.
 */
export async function ensureAdminKey(dataSource: DataSource, auth: Pick<AuthConfig, 'jwtSecret' | 'jwksUrl'>, print: (line: string) => void): Promise<void> {
  if (auth.jwtSecret || auth.jwksUrl) return;
  if ((await countActiveApiKeys(dataSource)) > 0) return;
  const any = async (entity: typeof ApiKey | typeof AuditLog) => (await dataSource.getRepository(entity).createQueryBuilder('x').select('1', 'one').limit(1).getRawOne()) !== undefined;
  const used = (await any(ApiKey)) || (await any(AuditLog));
  if (used) {
    throw new NoCredentialsError(
      'no active API key and no JWT_SECRET or JWKS_URL: nobody could sign in. Create a key with ' +
        '`auditql apikey create --name admin --scope audit:read audit:write audit:admin`, or configure JWT_SECRET / JWKS_URL.',
    );
  }
  const { secret } = await createApiKey(dataSource, { name: 'admin (created on first start)', scopes: [Scope.Read, Scope.Write, Scope.Admin] });
  print('No credentials were configured, so an admin API key was created. It is shown only this once:');
  print(`  ${secret}`);
  print('Send it as "Authorization: Bearer <key>". Manage keys with `auditql apikey list|create|revoke`.');
}
