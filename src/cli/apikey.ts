import type { Command } from 'commander';
import { ALL_SCOPES } from '../auth/principal.js';
import { loadConfig, type Config } from '../config.js';
import { createServerDataSource, openDatabase } from '../db/data-source.js';
import { createApiKey, listApiKeys, revokeApiKey } from '../services/api-keys.js';
import { userInfo } from 'node:os';
import type { DataSource } from 'typeorm';
import { onApiKeyRevoked } from '../auth/api-keys.js';
import { connectRedis } from '../pubsub/redis.js';
import { writeAuditEntries, type AuditEntryDraft } from '../audit/writer.js';

/**
 * Key changes made from the command line are evidence like those made over the API (meta-audit
 * `create_key` / `revoke_key`): recorded in the key's tenant, authored by the operator's account.
 */
function recordKeyChange(dataSource: DataSource, draft: Omit<AuditEntryDraft, 'resource' | 'author'>): Promise<unknown> {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No account name (some containers): the entry still says it came from the command line.
  }
  return dataSource.transaction((manager) =>
    writeAuditEntries(manager, [{ ...draft, resource: 'api_key', author: { id: `cli:${user}`, name: user, type: 'operator' }, meta: { operation: 'auditql apikey' } }]),
  );
}

async function withDatabase<T>(work: (dataSource: DataSource, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const dataSource = await openDatabase(createServerDataSource(config));
  // With REDIS_URL, a revocation made here reaches the running instances at once (they forget the key).
  const redis = config.redis ? connectRedis(config.redis) : undefined;
  if (redis && !(await redis.connected())) process.stderr.write('Redis (REDIS_URL) did not answer: running instances notice the revocation within a second or two\n');
  const stopAnnouncing = redis ? onApiKeyRevoked(dataSource, (id) => redis.announceRevocation(id)) : () => undefined;
  try {
    return await work(dataSource, config);
  } finally {
    stopAnnouncing();
    await redis?.close();
    await dataSource.destroy();
  }
}

/** `auditql apikey create|list|revoke`: API keys on the server's database (DATABASE_URL). */
export function apikeyCommand(program: Command): void {
  const apikey = program.command('apikey').description('create, list and revoke API keys on the database DATABASE_URL names');
  apikey
    .command('create')
    .description('create a key and print it once (only its hash is stored)')
    .requiredOption('--name <name>', 'what the key is for, e.g. billing-service')
    .requiredOption('--scope <scope...>', `one or more of ${ALL_SCOPES.join(', ')}`)
    .option('--tenant <tenant>', 'the tenant the key writes and reads', 'default')
    .option('--expires-at <instant>', 'when the key stops working, e.g. 2027-01-01T00:00:00Z (API_KEY_MAX_TTL caps it)')
    .action(async (options: { name: string; scope: string[]; tenant: string; expiresAt?: string }) => {
      const expiresAt = options.expiresAt ? new Date(options.expiresAt) : null;
      if (expiresAt && Number.isNaN(expiresAt.getTime())) throw new Error(`--expires-at: "${options.expiresAt}" is not an ISO-8601 instant`);
      const { apiKey, secret } = await withDatabase(async (dataSource, config) => {
        const created = await createApiKey(dataSource, { name: options.name, scopes: options.scope, tenantId: options.tenant, expiresAt, maxTtlSeconds: config.limits.apiKeyMaxTtlSeconds });
        await recordKeyChange(dataSource, { tenantId: created.apiKey.tenantId, action: 'create_key', resourceId: created.apiKey.id, data: { name: created.apiKey.name, scopes: created.apiKey.scopes } });
        return created;
      });
      const expiry = apiKey.expiresAt ? `, expires ${apiKey.expiresAt.toISOString()}` : '';
      process.stdout.write(`created ${apiKey.id} (${apiKey.scopes.join(' ')}, tenant ${apiKey.tenantId}${expiry}); the key, shown only now:\n${secret}\n`);
    });
  apikey
    .command('list')
    .description('list keys (never their secrets)')
    .option('--tenant <tenant>', 'only this tenant')
    .action(async (options: { tenant?: string }) => {
      const keys = await withDatabase((dataSource) => listApiKeys(dataSource, options.tenant));
      for (const key of keys) {
        const state = key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active';
        const used = key.lastUsedAt ? `last used ${key.lastUsedAt.toISOString()}` : 'never used';
        process.stdout.write(`${[key.id, key.name, key.tenantId, key.scopes.join(' '), state, used].join('\t')}\n`);
      }
    });
  apikey
    .command('revoke')
    .description('revoke a key; it stops working at once')
    .argument('<id>', 'the key id (the part after aql_, as `list` shows it)')
    .action(async (id: string) => {
      const key = await withDatabase(async (dataSource) => {
        const revoked = await revokeApiKey(dataSource, id);
        await recordKeyChange(dataSource, { tenantId: revoked.tenantId, action: 'revoke_key', resourceId: revoked.id, data: { name: revoked.name } });
        return revoked;
      });
      process.stdout.write(`revoked ${key.id}\n`);
    });
}
