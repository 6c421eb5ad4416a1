import type { Command } from 'commander';
import { ALL_SCOPES } from '../auth/principal.js';
import { loadConfig } from '../config.js';
import { createServerDataSource, openDatabase } from '../db/data-source.js';
import { createApiKey, listApiKeys, revokeApiKey } from '../services/api-keys.js';
import type { DataSource } from 'typeorm';
import { onApiKeyRevoked } from '../auth/api-keys.js';
import { connectRedis } from '../pubsub/redis.js';

async function withDatabase<T>(work: (dataSource: DataSource) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const dataSource = await openDatabase(createServerDataSource(config));
  // With REDIS_URL, a revocation made here reaches the running instances at once (they forget the key).
  const redis = config.redis ? connectRedis(config.redis) : undefined;
  if (redis && !(await redis.connected())) process.stderr.write('Redis (REDIS_URL) did not answer: running instances notice a revocation within 10 s\n');
  const stopAnnouncing = redis ? onApiKeyRevoked(dataSource, (id) => redis.announceRevocation(id)) : () => undefined;
  try {
    return await work(dataSource);
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
    .action(async (options: { name: string; scope: string[]; tenant: string }) => {
      const { apiKey, secret } = await withDatabase((dataSource) => createApiKey(dataSource, { name: options.name, scopes: options.scope, tenantId: options.tenant }));
      process.stdout.write(`created ${apiKey.id} (${apiKey.scopes.join(' ')}, tenant ${apiKey.tenantId}); the key, shown only now:\n${secret}\n`);
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
      const key = await withDatabase((dataSource) => revokeApiKey(dataSource, id));
      process.stdout.write(`revoked ${key.id}\n`);
    });
}
