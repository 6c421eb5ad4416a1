import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import { epochMillis } from './epoch-millis.js';
import type { StoredJson } from '../../shared/json.js';

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
@Index('idx_audit_log_tenant_sequence', ['tenantId', 'sequence'], { unique: true })
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
  data!: StoredJson | null;

  @Column({ type: 'simple-json', name: 'previous_data', nullable: true })
  previousData!: StoredJson | null;

  @Column({ type: 'simple-json', name: 'meta', nullable: true })
  meta!: StoredJson | null;

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

  /** The entry's place in its tenant's chain: 1, 2, 3, … in commit order, without gaps (README, "Evidence"). */
  @Column({ type: 'bigint', name: 'sequence', transformer: { to: (v: number) => v, from: (v: number | string | null) => (v === null ? null : Number(v)) } })
  sequence!: number;

  /** SHA-256 (hex) of the entry's canonical facts followed by `previousHash`. */
  @Column({ type: 'varchar', length: 64, name: 'hash' })
  hash!: string;

  /** The hash of the entry before it in the tenant's chain (64 zeros for the first). */
  @Column({ type: 'varchar', length: 64, name: 'previous_hash' })
  previousHash!: string;

  /** The version of the canonical form the hash was computed with. */
  @Column({ type: 'integer', name: 'hash_version' })
  hashVersion!: number;

  /** Salt of the digests that stand for the entry's personal values in the hash; removed when they are erased. */
  @Column({ type: 'varchar', length: 32, name: 'salt', nullable: true })
  salt!: string | null;

  /** JSON pointers of the personal values (`/authorName`, `/ip`, `/data/email` …); NULL for none. */
  @Column({ type: 'simple-json', name: 'personal_paths', nullable: true })
  personalPaths!: string[] | null;

  /** Digests of erased personal values, by pointer, so that the chain still verifies without them. */
  @Column({ type: 'simple-json', name: 'erased_digests', nullable: true })
  erasedDigests!: Record<string, string> | null;
}
