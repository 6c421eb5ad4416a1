import { TableColumn, type MigrationInterface, type QueryRunner } from 'typeorm';

/** API keys may expire. */
export class ApiKeyExpiry1763800000100 implements MigrationInterface {
  name = 'ApiKeyExpiry1763800000100';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumn('api_key', new TableColumn({ name: 'expires_at', type: 'bigint', isNullable: true }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('api_key', 'expires_at');
  }
}
