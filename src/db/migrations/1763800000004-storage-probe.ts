import { Table, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * One row the server rewrites to find out whether the database takes writes again after a storage failure
 * (disk full, I/O error): only a real commit can tell.
 */
export class StorageProbe1763800000004 implements MigrationInterface {
  name = 'StorageProbe1763800000004';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'audit_storage_probe',
        columns: [
          { name: 'id', type: 'integer', isPrimary: true },
          { name: 'checked_at', type: 'bigint' },
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('audit_storage_probe');
  }
}
