import { Table, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Per-tenant retention overrides (README, "Retention"): how many days a tenant's entries are kept, in place
 * of RETENTION_DAYS. `days = 0` keeps the tenant's entries forever whatever the global setting; a tenant
 * without a row follows RETENTION_DAYS. Plain columns, so the one migration serves SQLite and PostgreSQL.
 */
export class RetentionPolicy1763800000310 implements MigrationInterface {
  name = 'RetentionPolicy1763800000310';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'audit_retention_policy',
        columns: [
          { name: 'tenant_id', type: 'varchar', length: '128', isPrimary: true },
          { name: 'days', type: 'integer' },
          { name: 'updated_at', type: 'bigint' },
          { name: 'updated_by', type: 'varchar', length: '255', isNullable: true },
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('audit_retention_policy');
  }
}
