import { GraphQLError } from 'graphql';
import { createSchema } from 'graphql-yoga';
import type { DataSource } from 'typeorm';
import { Customer, Order, OrderLine, Product } from './entities/index.js';

import type { AuditContext } from '../../src/index.js';

export interface ShopContext {
  dataSource: DataSource;
  /** Who is acting; every resolver runs inside it (see app.ts). */
  audit: AuditContext;
}

/** The shop's own API. Its resolvers know nothing about auditing: every change is captured anyway. */
export const shopSchema = createSchema<ShopContext>({
  typeDefs: /* GraphQL */ `
    type Product { id: ID! sku: String! name: String! price: String! stock: Int! }
    type Customer { id: ID! email: String! name: String! }
    type Order { id: ID! status: String! total: String! }
    input LineInput { productId: ID! quantity: Int! }
    type Query { products: [Product!]! }
    type Mutation {
      createCustomer(email: String!, name: String!, password: String!): Customer!
      changePassword(id: ID!, password: String!): Customer!
      createProduct(sku: String!, name: String!, price: String!, stock: Int!, supplierCost: String): Product!
      updateProduct(id: ID!, name: String, price: String): Product!
      restock(sku: String!, quantity: Int!): Product!
      discountAll(percent: Int!): Int!
      discontinueProduct(id: ID!): Boolean!
      restoreProduct(id: ID!): Boolean!
      placeOrder(customerId: ID!, lines: [LineInput!]!): Order!
      cancelOrder(id: ID!): Boolean!
    }
  `,
  resolvers: {
    Query: {
      products: (_root, _args, { dataSource }) => dataSource.getRepository(Product).find(),
    },
    Mutation: {
      // save(): entity and database state come from TypeORM
      createCustomer: (_root, args: { email: string; name: string; password: string }, { dataSource }) =>
        dataSource.getRepository(Customer).save(dataSource.getRepository(Customer).create(args)),
      changePassword: async (_root, args: { id: string; password: string }, { dataSource }) => {
        const customers = dataSource.getRepository(Customer);
        const customer = await customers.findOneByOrFail({ id: Number(args.id) });
        customer.password = args.password;
        return customers.save(customer);
      },
      // insert(): a query-builder write
      createProduct: async (_root, args: { sku: string; name: string; price: string; stock: number; supplierCost?: string }, { dataSource }) => {
        const result = await dataSource.getRepository(Product).insert({ ...args, supplierCost: args.supplierCost ?? '0' });
        return dataSource.getRepository(Product).findOneByOrFail({ id: result.identifiers[0]!.id });
      },
      // update() by criteria
      updateProduct: async (_root, args: { id: string; name?: string; price?: string }, { dataSource }) => {
        const { id, ...changes } = args;
        await dataSource.getRepository(Product).update({ id: Number(id) }, changes);
        return dataSource.getRepository(Product).findOneByOrFail({ id: Number(id) });
      },
      // a query-builder update with an SQL expression
      restock: async (_root, args: { sku: string; quantity: number }, { dataSource }) => {
        await dataSource.createQueryBuilder().update(Product).set({ stock: () => `stock + ${Math.trunc(args.quantity)}` }).where('sku = :sku', { sku: args.sku }).execute();
        return dataSource.getRepository(Product).findOneByOrFail({ sku: args.sku });
      },
      // one statement, many rows
      discountAll: async (_root, args: { percent: number }, { dataSource }) => {
        const factor = (100 - args.percent) / 100;
        const result = await dataSource.createQueryBuilder().update(Product).set({ price: () => `ROUND(price * ${factor}, 2)` }).execute();
        return result.affected ?? 0;
      },
      discontinueProduct: async (_root, args: { id: string }, { dataSource }) => ((await dataSource.getRepository(Product).softDelete(Number(args.id))).affected ?? 0) > 0,
      restoreProduct: async (_root, args: { id: string }, { dataSource }) => ((await dataSource.getRepository(Product).restore(Number(args.id))).affected ?? 0) > 0,
      // several entities in one transaction: all of it is recorded, or none of it
      placeOrder: (_root, args: { customerId: string; lines: Array<{ productId: string; quantity: number }> }, { dataSource }) =>
        dataSource.transaction(async (manager) => {
          let total = 0;
          const lines: OrderLine[] = [];
          for (const line of args.lines) {
            const product = await manager.findOneByOrFail(Product, { id: Number(line.productId) });
            if (product.stock < line.quantity) throw new GraphQLError(`Only ${product.stock} of ${product.sku} left`, { extensions: { code: 'BAD_USER_INPUT' } });
            await manager.decrement(Product, { id: product.id }, 'stock', line.quantity);
            total += Number(product.price) * line.quantity;
            lines.push(manager.create(OrderLine, { productId: product.id, quantity: line.quantity, unitPrice: product.price }));
          }
          return manager.save(manager.create(Order, { customerId: Number(args.customerId), total: total.toFixed(2), lines }));
        }),
      // remove(): loads and deletes the entity graph it is given
      cancelOrder: async (_root, args: { id: string }, { dataSource }) => {
        const order = await dataSource.getRepository(Order).findOne({ where: { id: Number(args.id) }, relations: { lines: true } });
        if (!order) return false;
        await dataSource.transaction(async (manager) => {
          await manager.remove(order.lines ?? []);
          await manager.remove(order);
        });
        return true;
      },
    },
  },
});
