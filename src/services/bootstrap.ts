import type { DataSource } from 'typeorm';
import type { AuthConfig } from '../config.js';
import { countActiveApiKeys, createApiKey } from './api-keys.js';
import { Scope } from '../auth/principal.js';

/**
 * Secure by default, still one command: a server with no JWT configuration and no API key creates one
 * admin key on its first start and prints it once. There is no switch that turns authentication off.
 */
export async function ensureAdminKey(dataSource: DataSource, auth: AuthConfig, print: (line: string) => void): Promise<void> {
  if (auth.jwtSecret || auth.jwksUrl) return;
  if ((await countActiveApiKeys(dataSource)) > 0) return;
  const { secret } = await createApiKey(dataSource, { name: 'admin (created on first start)', scopes: [Scope.Read, Scope.Write, Scope.Admin] });
  print('No credentials were configured, so an admin API key was created. It is shown only this once:');
  print(`  ${secret}`);
  print('Send it as "Authorization: Bearer <key>". Manage keys with `npm run apikey -- list|create|revoke`.');
}
