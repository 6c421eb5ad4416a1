import { Table, TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';

/** API keys for machine clients, and which principal wrote each entry. */
export class ApiKeys1763800000002 implements MigrationInterface {
  name = 'ApiKeys1763800000002';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'api_key',
        columns: [
          { name: 'id', type: 'varchar', length: '32', isPrimary: true },
          { name: 'name', type: 'varchar', length: '255' },
          { name: 'tenant_id', type: 'varchar', length: '128' },
          { name: 'scopes', type: 'text' },
          { name: 'secret_hash', type: 'varchar', length: '64' },
          { name: 'created_at', type: 'bigint' },
          { name: 'last_used_at', type: 'bigint', isNullable: true },
          { name: 'revoked_at', type: 'bigint', isNullable: true },
        ],
      }),
    );
    await queryRunner.createIndex('api_key', new TableIndex({ name: 'idx_api_key_tenant', columnNames: ['tenant_id'] }));
    await queryRunner.addColumn('audit_log', new TableColumn({ name: 'recorded_by', type: 'varchar', length: '255', isNullable: true }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('audit_log', 'recorded_by');
    await queryRunner.dropTable('api_key');
  }
}
