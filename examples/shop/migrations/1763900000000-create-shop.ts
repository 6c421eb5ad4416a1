import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateShop1763900000000 implements MigrationInterface {
  name = 'CreateShop1763900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TABLE "customer" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "email" varchar(255) NOT NULL UNIQUE, "name" varchar(255) NOT NULL, "password" varchar(255) NOT NULL, "updatedAt" datetime NOT NULL DEFAULT (datetime('now')))`);
    await queryRunner.query(`CREATE TABLE "product" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "sku" varchar(64) NOT NULL UNIQUE, "name" varchar(255) NOT NULL, "price" decimal(10,2) NOT NULL, "supplierCost" decimal(10,2) NOT NULL DEFAULT ('0'), "stock" integer NOT NULL DEFAULT (0), "attributes" text, "updatedAt" datetime NOT NULL DEFAULT (datetime('now')), "deletedAt" datetime)`);
    await queryRunner.query(`CREATE TABLE "order" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "customerId" integer NOT NULL REFERENCES "customer" ("id"), "status" varchar(32) NOT NULL DEFAULT ('placed'), "total" decimal(10,2) NOT NULL, "createdAt" datetime NOT NULL DEFAULT (datetime('now')))`);
    await queryRunner.query(`CREATE TABLE "order_line" ("orderId" integer NOT NULL REFERENCES "order" ("id") ON DELETE CASCADE, "productId" integer NOT NULL, "quantity" integer NOT NULL, "unitPrice" decimal(10,2) NOT NULL, PRIMARY KEY ("orderId", "productId"))`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['order_line', 'order', 'product', 'customer']) await queryRunner.query(`DROP TABLE "${table}"`);
  }
}
