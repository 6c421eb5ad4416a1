export { Customer } from './customer.entity.js';
export { Order } from './order.entity.js';
export { OrderLine } from './order-line.entity.js';
export { Product } from './product.entity.js';
