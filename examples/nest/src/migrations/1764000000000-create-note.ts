import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The app's own table; auditql's tables come from `auditMigrations`. */
export class CreateNote1764000000000 implements MigrationInterface {
  name = 'CreateNote1764000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE TABLE "note" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "text" varchar NOT NULL)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE "note"');
  }
}
