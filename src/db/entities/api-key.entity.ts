import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { epochMillis } from './epoch-millis.js';

/** A machine client's credentials. Only a hash of the secret is stored; the key is shown once. */
@Entity({ name: 'api_key' })
@Index('idx_api_key_tenant', ['tenantId'])
export class ApiKey {
  /** Public part of the key, also its lookup id. */
  @PrimaryColumn({ type: 'varchar', length: 32, name: 'id' })
  id!: string;

  @Column({ type: 'varchar', length: 255, name: 'name' })
  name!: string;

  @Column({ type: 'varchar', length: 128, name: 'tenant_id' })
  tenantId!: string;

  @Column({ type: 'simple-json', name: 'scopes' })
  scopes!: string[];

  /** SHA-256 of the secret part, hex. */
  @Column({ type: 'varchar', length: 64, name: 'secret_hash' })
  secretHash!: string;

  @Column({ type: 'bigint', name: 'created_at', transformer: epochMillis })
  createdAt!: Date;

  @Column({ type: 'bigint', name: 'last_used_at', nullable: true, transformer: epochMillis })
  lastUsedAt!: Date | null;

  @Column({ type: 'bigint', name: 'revoked_at', nullable: true, transformer: epochMillis })
  revokedAt!: Date | null;

  /** After this instant the key is refused, and streams it opened end. `null`: it does not expire. */
  @Column({ type: 'bigint', name: 'expires_at', nullable: true, transformer: epochMillis })
  expiresAt!: Date | null;
}
