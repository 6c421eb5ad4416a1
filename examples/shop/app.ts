import 'reflect-metadata';
import { createServer } from 'node:http';
import { createYoga } from 'graphql-yoga';
import { createAuditServer, useAuditContext } from '../../src/index.js';
import { createShopDataSource } from './data-source.js';
import { shopSchema, type ShopContext } from './schema.js';

/**
 * The shop's API at /shop/graphql and its audit log at /graphql, on one port. Who is acting comes from
 * the `x-user-id` / `x-user-name` headers here; a real app takes it from its authentication.
 */
export async function startShop({ database = ':memory:', port = 4001, host = '127.0.0.1' } = {}) {
  const dataSource = createShopDataSource(database);
  await dataSource.initialize();
  await dataSource.runMigrations();

  const shop = createYoga<object, ShopContext>({
    schema: shopSchema,
    graphqlEndpoint: '/shop/graphql',
    logging: false,
    context: ({ request }) => ({
      dataSource,
      audit: {
        author: request.headers.get('x-user-id') ? { id: request.headers.get('x-user-id')!, name: request.headers.get('x-user-name'), type: 'user' } : null,
        userAgent: request.headers.get('user-agent'),
      },
    }),
    plugins: [useAuditContext<ShopContext>((context) => context.audit)], // audit: attribute every change
  });
  const audit = createAuditServer({ dataSource, logging: false });
  const server = createServer((req, res) => (req.url?.startsWith('/shop') ? shop(req, res) : audit.yoga(req, res)));
  const { port: bound } = await audit.start({ server, port, host });
  return {
    dataSource,
    audit,
    shopUrl: `http://${host}:${bound}/shop/graphql`,
    auditUrl: `http://${host}:${bound}/graphql`,
    auditWsUrl: `ws://${host}:${bound}/graphql`,
    async stop() {
      await audit.stop();
      await dataSource.destroy();
    },
  };
}
