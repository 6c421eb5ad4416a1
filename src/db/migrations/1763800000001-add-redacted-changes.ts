import { TableColumn, type MigrationInterface, type QueryRunner } from 'typeorm';

/** Which redacted fields changed: their values are never stored, so the diff needs to be told. */
export class AddRedactedChanges1763800000001 implements MigrationInterface {
  name = 'AddRedactedChanges1763800000001';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumn('audit_log', new TableColumn({ name: 'redacted_changes', type: 'text', isNullable: true }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('audit_log', 'redacted_changes');
  }
}
