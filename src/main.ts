import 'reflect-metadata';
import { createAuditServer } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createSqliteDataSource, openDatabase } from './db/data-source.js';
import { ensureAdminKey } from './auth/bootstrap.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const dataSource = await openDatabase(createSqliteDataSource({ database: config.database, synchronous: config.sqliteSynchronous }));
  await ensureAdminKey(dataSource, config.auth, (line) => console.log(line));
  const server = createAuditServer({ dataSource, limits: config.limits, auth: config.auth, production: config.production });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal} received, closing connections and the database`);
    await server.stop();
    await dataSource.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  const { url } = await server.start({ port: config.port, host: config.host });
  console.log(`auditql listening on ${url} (database: ${config.database})`);
  console.log(`Audit-log viewer: ${url.replace(/\/graphql$/, '/audit-log')}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? `Configuration error: ${error.message}` : error);
  process.exit(1);
});
