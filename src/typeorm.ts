/**
 * `auditql/typeorm`: automatic auditing of an app's own TypeORM entities. The app adds the entities, the
 * migrations and the subscriber to its DataSource and wraps its request handling in `withAuditContext`.
 * Loads nothing of the GraphQL server.
 */
export { AuditLog } from './db/entities/audit-log.entity.js';
export { ApiKey } from './db/entities/api-key.entity.js';
export { auditEntities } from './db/entities/index.js';
export { migrations as auditMigrations } from './db/migrations/index.js';
export { AuditSubscriber, createAuditSubscriber, PARTIAL_CAPTURE, type AuditSubscriberClass, type CapturedAction } from './audit/capture.subscriber.js';
export { AuditPublishSubscriber } from './audit/publish.subscriber.js';
export { Audited, auditEntity, DEFAULT_REDACTED_FIELDS, REDACTED, type AuditCaptureOptions, type CaptureWarning, type EntityAuditOptions, type FieldRule } from './audit/options.js';
export { withAuditContext, currentAuditContext, type AuditContext, type AuditActor } from './audit/context.js';
export { writeAuditEntries, type AuditEntryDraft } from './audit/writer.js';
export { diff, type FieldChange, type FieldChangeKind } from './audit/diff.js';
export type { JsonValue, JsonObject } from './shared/json.js';
