import { Table, type MigrationInterface, type QueryRunner } from 'typeorm';

/**
 * Secrets the server makes for itself, by name: the key that signs viewer tokens lives here, so they work
 * on a server with no JWT configuration, and every process on the same database verifies them alike.
 */
export class ServerSecrets1763800000016 implements MigrationInterface {
  name = 'ServerSecrets1763800000016';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'audit_server_secret',
        columns: [
          { name: 'name', type: 'varchar', length: '64', isPrimary: true },
          { name: 'value', type: 'varchar', length: '128' },
          { name: 'created_at', type: 'bigint' },
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('audit_server_secret');
  }
}
