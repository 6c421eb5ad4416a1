import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import type { Order } from './order.entity.js';

/** Composite primary key (orderId, productId): recorded as a sorted-key JSON resourceId. */
@Entity({ name: 'order_line' })
export class OrderLine {
  @PrimaryColumn({ type: 'integer' })
  orderId!: number;

  @PrimaryColumn({ type: 'integer' })
  productId!: number;

  @ManyToOne('Order', 'lines', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'orderId' })
  order?: Order;

  @Column({ type: 'integer' })
  quantity!: number;

  @Column({ type: 'decimal', precision: 10, scale: 2 })
  unitPrice!: string;
}
