import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { ALL_SCOPES } from '../src/auth/principal.js';
import { loadConfig } from '../src/config.js';
import { createSqliteDataSource, openDatabase } from '../src/db/data-source.js';
import { createApiKey, listApiKeys, revokeApiKey } from '../src/services/api-keys.js';

const USAGE = `npm run apikey -- create --name NAME --scope SCOPE [--scope SCOPE …] [--tenant TENANT]
npm run apikey -- list [--tenant TENANT]
npm run apikey -- revoke ID
Scopes: ${ALL_SCOPES.join(', ')}`;

/** Manages API keys on the server's database (DATABASE_URL), for bootstrapping and automation. */
async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { name: { type: 'string' }, scope: { type: 'string', multiple: true }, tenant: { type: 'string' }, help: { type: 'boolean' } },
  });
  const [command, id] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 1;
  }
  const config = loadConfig();
  const dataSource = await openDatabase(createSqliteDataSource({ database: config.database, synchronous: config.sqliteSynchronous }));
  try {
    if (command === 'create') {
      const { apiKey, secret } = await createApiKey(dataSource, { name: values.name ?? '', scopes: values.scope ?? [], tenantId: values.tenant });
      console.log(`created ${apiKey.id} (${apiKey.scopes.join(' ')}, tenant ${apiKey.tenantId}); the key, shown only now:\n${secret}`);
    } else if (command === 'list') {
      for (const key of await listApiKeys(dataSource, values.tenant)) {
        console.log([key.id, key.name, key.tenantId, key.scopes.join(' '), key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active', key.lastUsedAt ? `last used ${key.lastUsedAt.toISOString()}` : 'never used'].join('\t'));
      }
    } else if (command === 'revoke' && id) {
      const key = await revokeApiKey(dataSource, id);
      console.log(`revoked ${key.id}`);
    } else {
      console.log(USAGE);
      return 1;
    }
    return 0;
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    return 1;
  } finally {
    await dataSource.destroy();
  }
}

process.exitCode = await main();
