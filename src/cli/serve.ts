import { createPublicKey, type KeyObject } from 'node:crypto';
import closeWithGrace from 'close-with-grace';
import type { DataSource } from 'typeorm';
import { createAuditServer } from '../app.js';
import type { Config } from '../config.js';
import { createServerDataSource, openDatabase, withMigrationLock } from '../db/data-source.js';
import { ensureAdminKey } from '../services/bootstrap.js';
import { storedCheckpointKey } from '../services/checkpoint-key.js';
import { checkpointKeyFrom, publicKeyPem } from '../shared/chain/checkpoint.js';
import { createLogger, type Logger } from '../shared/logger.js';

/**
 * The server process: read the configuration, open (and migrate) the database, start listening. On
 * SIGTERM/SIGINT it stops accepting, ends live streams with a resume cursor, lets in-flight requests finish
 * (up to SHUTDOWN_TIMEOUT_MS), closes WebSockets with 1001, then the database, and exits.
 */
export async function serve(config: Config): Promise<void> {
  const logger = createLogger({ pretty: !config.production });
  const dataSource = await openDatabase(createServerDataSource(config));
  // Under the migration lock: instances starting together on a fresh database mint one admin key, not one each.
  await withMigrationLock(dataSource, () => ensureAdminKey(dataSource, config.auth, (line) => process.stdout.write(`${line}\n`)));
  const { evidence } = config;
  const keys = await checkpointKeys(dataSource, config, logger);
  const server = createAuditServer({
    dataSource,
    redis: config.redis,
    liveCheckIntervalMs: config.liveCheckIntervalMs,
    limits: config.limits,
    auth: config.auth,
    production: config.production,
    corsOrigins: config.corsOrigins,
    logger,
    store: { ...config.store, ownsConnection: true },
    evidence: {
      checkpointPrivateKey: keys.privateKey,
      checkpointPreviousKeys: keys.previousKeys,
      checkpointIntervalMs: evidence.checkpointIntervalMs,
      metaAudit: { mode: evidence.metaAudit, windowMs: evidence.metaAuditWindowMs },
      personalFields: evidence.personalFields,
    },
    retention: { days: config.retention.days, archiveDir: config.retention.archiveDir, intervalMs: config.retention.intervalMs },
  });

  // close-with-grace's own limit is a last resort, past the drain's deadline (SHUTDOWN_TIMEOUT_MS).
  closeWithGrace({ delay: config.shutdownTimeoutMs + 5_000, logger: { error: (message: unknown) => logger.error({ err: message }, 'shutdown') } }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'closing after an unexpected error');
    else logger.info(`${signal ?? 'shutdown'} received, closing connections and the database`);
    // stop() drains: in-flight writes commit (group commit included) before the database closes.
    await server.stop({ timeoutMs: config.shutdownTimeoutMs });
    await dataSource.destroy();
    logger.info('shutdown complete');
  });

  const { url } = await server.start({ port: config.port, host: config.host });
  logger.info(`auditql listening on ${url} (database: ${describeDatabase(config)})`);
  logger.info(`audit-log viewer at ${url.replace(/\/graphql$/, '/audit-log')}`);
}

/**
 * The checkpoint keys as configured. On PostgreSQL, which has no folder beside the database, a key the
 * server generates is kept in the database instead (storedCheckpointKey); once a key is configured, the
 * checkpoints the stored one signed stay trusted.
 */
async function checkpointKeys(dataSource: DataSource, config: Config, logger: Logger): Promise<{ privateKey?: string | KeyObject; previousKeys?: string }> {
  const { checkpointPrivateKey: privateKey, checkpointPreviousKeys: previousKeys } = config.evidence;
  if (config.dialect !== 'postgres') return { privateKey, previousKeys };
  const stored = await storedCheckpointKey(dataSource, privateKey === undefined);
  if (privateKey !== undefined) return { privateKey, previousKeys: stored ? [previousKeys, publicKeyPem(createPublicKey(stored))].filter(Boolean).join('\n') : previousKeys };
  logger.warn(`no CHECKPOINT_PRIVATE_KEY: checkpoints are signed with a key generated and kept in the database (key id ${checkpointKeyFrom(stored!).keyId}); production should supply its own, stored apart from the database`);
  return { privateKey: stored, previousKeys };
}

/** Where the data is, for the log: never a password. */
function describeDatabase(config: Config): string {
  if (config.dialect === 'sqlite') return config.database;
  const url = new URL(config.database);
  return `${url.protocol}//${url.host}${url.pathname}`;
}
