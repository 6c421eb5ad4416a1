/** The library's public face: add the entity and migrations to your DataSource, serve the API next to your app. */
export { AuditLog } from './db/entities/audit-log.entity.js';
export { migrations as auditMigrations } from './db/migrations/index.js';
export { AuditPublishSubscriber } from './audit/publish.subscriber.js';
export { withAuditContext, currentAuditContext, type AuditContext, type AuditActor } from './audit/context.js';
export { writeAuditEntries, type AuditEntryDraft } from './audit/writer.js';
export { diff, type FieldChange } from './audit/diff.js';
export type { JsonValue, JsonObject } from './audit/json.js';
export { createAuditServer, type AuditServer, type AuditServerOptions } from './app.js';
export { createAuditPubSub, type AuditPubSub } from './pubsub.js';
export { createSqliteDataSource, sqliteDataSourceOptions, openDatabase } from './db/data-source.js';
export { writeTransaction } from './db/transaction.js';
export { schema } from './schema/index.js';
