/**
 * The library's public face. An app adds the entity, its migrations and the subscribers to its own
 * DataSource, wraps its request handling in `withAuditContext`, and may serve the audit API next to itself.
 */
export { AuditLog } from './db/entities/audit-log.entity.js';
export { ApiKey } from './db/entities/api-key.entity.js';
export { auditEntities } from './db/entities/index.js';
export { migrations as auditMigrations } from './db/migrations/index.js';
export { AuditSubscriber, createAuditSubscriber, PARTIAL_CAPTURE, type CapturedAction } from './audit/capture.subscriber.js';
export { AuditPublishSubscriber } from './audit/publish.subscriber.js';
export { Audited, auditEntity, DEFAULT_REDACTED_FIELDS, REDACTED, type AuditCaptureOptions, type CaptureWarning, type EntityAuditOptions, type FieldRule } from './audit/options.js';
export { withAuditContext, currentAuditContext, type AuditContext, type AuditActor } from './audit/context.js';
export { writeAuditEntries, type AuditEntryDraft } from './audit/writer.js';
export { diff, type FieldChange, type FieldChangeKind } from './audit/diff.js';
export type { JsonValue, JsonObject } from './audit/json.js';
export { createAuditServer, type AuditServer, type AuditServerOptions } from './app.js';
export { useAuditContext } from './server/audit-context.plugin.js';
export { createAuditPubSub, type AuditPubSub } from './pubsub.js';
export { createSqliteDataSource, sqliteDataSourceOptions, openDatabase } from './db/data-source.js';
export { writeTransaction } from './db/transaction.js';
export { createApiKey, revokeApiKey, listApiKeys, type CreatedApiKey } from './services/api-keys.js';
export { Scope, type Principal } from './auth/principal.js';
export { schema } from './schema/index.js';
