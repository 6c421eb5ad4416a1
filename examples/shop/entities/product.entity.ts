import { Column, DeleteDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { Audited } from '../../../src/index.js';

@Entity({ name: 'product' })
@Audited({ ignore: ['updatedAt'], redact: ['supplierCost'] })
export class Product {
  @PrimaryGeneratedColumn({ type: 'integer' })
  id!: number;

  @Column({ type: 'varchar', length: 64, unique: true })
  sku!: string;

  @Column({ type: 'varchar', length: 255 })
  name!: string;

  @Column({ type: 'decimal', precision: 10, scale: 2 })
  price!: string;

  @Column({ type: 'decimal', precision: 10, scale: 2, default: '0' })
  supplierCost!: string;

  @Column({ type: 'integer', default: 0 })
  stock!: number;

  @Column({ type: 'simple-json', nullable: true })
  attributes!: Record<string, unknown> | null;

  @UpdateDateColumn({ type: 'datetime' })
  updatedAt!: Date;

  /** Discontinued products are soft-deleted and can be restored. */
  @DeleteDateColumn({ type: 'datetime', nullable: true })
  deletedAt!: Date | null;
}
