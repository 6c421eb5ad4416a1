import closeWithGrace from 'close-with-grace';
import { createAuditServer } from '../app.js';
import type { Config } from '../config.js';
import { createSqliteDataSource, openDatabase } from '../db/data-source.js';
import { ensureAdminKey } from '../services/bootstrap.js';
import { createLogger } from '../shared/logger.js';

/** How long a shutdown waits for in-flight requests and streams before closing what is left. */
const SHUTDOWN_GRACE_MS = 10_000;

/**
 * The server process: read the configuration, open (and migrate) the database, start listening. On
 * SIGTERM/SIGINT it stops accepting, lets in-flight work finish, closes the database and exits.
 */
export async function serve(config: Config): Promise<void> {
  const logger = createLogger({ pretty: !config.production });
  const dataSource = await openDatabase(createSqliteDataSource({ database: config.database, synchronous: config.sqliteSynchronous }));
  await ensureAdminKey(dataSource, config.auth, (line) => process.stdout.write(`${line}\n`));
  const server = createAuditServer({ dataSource, limits: config.limits, auth: config.auth, production: config.production, logger, store: { ...config.store, ownsConnection: true } });

  closeWithGrace({ delay: SHUTDOWN_GRACE_MS + 5_000, logger: { error: (message: unknown) => logger.error({ err: message }, 'shutdown') } }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'closing after an unexpected error');
    else logger.info(`${signal ?? 'shutdown'} received, closing connections and the database`);
    await server.stop();
    await dataSource.destroy();
  });

  const { url } = await server.start({ port: config.port, host: config.host });
  logger.info(`auditql listening on ${url} (database: ${config.database})`);
  logger.info(`audit-log viewer at ${url.replace(/\/graphql$/, '/audit-log')}`);
}
