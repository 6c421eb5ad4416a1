import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, OneToMany, PrimaryGeneratedColumn } from 'typeorm';
import type { Customer } from './customer.entity.js';
import type { OrderLine } from './order-line.entity.js';

@Entity({ name: 'order' })
export class Order {
  @PrimaryGeneratedColumn({ type: 'integer' })
  id!: number;

  @Column({ type: 'integer' })
  customerId!: number;

  @ManyToOne('Customer', 'orders')
  @JoinColumn({ name: 'customerId' })
  customer?: Customer;

  @Column({ type: 'varchar', length: 32, default: 'placed' })
  status!: string;

  @Column({ type: 'decimal', precision: 10, scale: 2 })
  total!: string;

  @CreateDateColumn({ type: 'datetime' })
  createdAt!: Date;

  @OneToMany('OrderLine', 'order', { cascade: true })
  lines?: OrderLine[];
}
