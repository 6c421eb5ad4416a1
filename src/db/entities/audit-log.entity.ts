import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import { epochMillis } from './epoch-millis.js';
import type { JsonValue } from '../../shared/json.js';

/** Sizes of the columns that hold values taken from request headers (cut to fit when written). */
export const COLUMN_LENGTH = { ip: 64, userAgent: 1024 } as const;

/** One recorded fact. Columns carry explicit types because esbuild-based runners emit no decorator metadata. */
@Entity({ name: 'audit_log' })
@Index('idx_audit_log_tenant_created', ['tenantId', 'createdAt', 'action', 'resource', 'authorId'])
@Index('idx_audit_log_tenant_resource_created', ['tenantId', 'resource', 'createdAt'])
@Index('idx_audit_log_tenant_record_created', ['tenantId', 'resource', 'resourceId', 'createdAt'])
@Index('idx_audit_log_tenant_author_created', ['tenantId', 'authorId', 'createdAt'])
@Index('idx_audit_log_transaction', ['transactionId'])
@Index('idx_audit_log_idempotency', ['tenantId', 'idempotencyKey'], { unique: true, where: 'idempotency_key IS NOT NULL' })
export class AuditLog {
  @PrimaryGeneratedColumn({ type: 'integer', name: 'id' })
  id!: number;

  /** Every entry belongs to exactly one tenant; single-tenant deployments use `default`. */
  @Column({ type: 'varchar', length: 128, name: 'tenant_id', default: 'default' })
  tenantId!: string;

  @Column({ type: 'varchar', length: 255, name: 'resource' })
  resource!: string;

  @Column({ type: 'varchar', length: 255, name: 'resource_id', nullable: true })
  resourceId!: string | null;

  @Column({ type: 'varchar', length: 64, name: 'action' })
  action!: string;

  @Column({ type: 'varchar', length: 512, name: 'name', nullable: true })
  name!: string | null;

  @Column({ type: 'varchar', length: 255, name: 'author_id', nullable: true })
  authorId!: string | null;

  @Column({ type: 'varchar', length: 255, name: 'author_name', nullable: true })
  authorName!: string | null;

  @Column({ type: 'varchar', length: 64, name: 'author_type', nullable: true })
  authorType!: string | null;

  @Column({ type: 'simple-json', name: 'data', nullable: true })
  data!: JsonValue | null;

  @Column({ type: 'simple-json', name: 'previous_data', nullable: true })
  previousData!: JsonValue | null;

  @Column({ type: 'simple-json', name: 'meta', nullable: true })
  meta!: JsonValue | null;

  @Column({ type: 'varchar', length: COLUMN_LENGTH.ip, name: 'ip', nullable: true })
  ip!: string | null;

  @Column({ type: 'varchar', length: COLUMN_LENGTH.userAgent, name: 'user_agent', nullable: true })
  userAgent!: string | null;

  /** Redacted fields whose value changed; the values themselves are never stored. */
  @Column({ type: 'simple-json', name: 'redacted_changes', nullable: true })
  redactedChanges!: string[] | null;

  /** The principal that wrote the entry, when it differs from the author (a service relaying its users). */
  @Column({ type: 'varchar', length: 255, name: 'recorded_by', nullable: true })
  recordedBy!: string | null;

  /** Groups the entries one database transaction wrote ("these rows changed together"). */
  @Column({ type: 'varchar', length: 64, name: 'transaction_id', nullable: true })
  transactionId!: string | null;

  /** Scoped to the author: `[authorId, key]` as JSON, so two authors may use the same key. */
  @Column({ type: 'varchar', length: 600, name: 'idempotency_key', nullable: true })
  idempotencyKey!: string | null;

  @Column({ type: 'bigint', name: 'created_at', transformer: epochMillis })
  createdAt!: Date;
}
