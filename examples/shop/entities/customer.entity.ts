import { Column, Entity, OneToMany, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { Audited } from '../../../src/index.js';
import type { Order } from './order.entity.js';

@Entity({ name: 'customer' })
@Audited({ ignore: ['updatedAt'] })
export class Customer {
  @PrimaryGeneratedColumn({ type: 'integer' })
  id!: number;

  @Column({ type: 'varchar', length: 255, unique: true })
  email!: string;

  @Column({ type: 'varchar', length: 255 })
  name!: string;

  /** Redacted by the default list: entries show that it changed, never its value. */
  @Column({ type: 'varchar', length: 255 })
  password!: string;

  @UpdateDateColumn({ type: 'datetime' })
  updatedAt!: Date;

  @OneToMany('Order', 'customer')
  orders?: Order[];
}
