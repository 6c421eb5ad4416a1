import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startShop } from '../examples/shop/app.js';
import { collect, untilSubscribed } from './helpers/test-app.js';
import { createApiKey } from '../src/index.js';

let shop: Awaited<ReturnType<typeof startShop>>;
let dashboard: Record<string, string>;
let dashboardKey: string;
beforeAll(async () => {
  shop = await startShop({ database: ':memory:', port: 0 });
  dashboardKey = (await createApiKey(shop.dataSource, { name: 'dashboard', scopes: ['audit:read'] })).secret;
  dashboard = { authorization: `Bearer ${dashboardKey}` };
});
afterAll(() => shop.stop());

async function post(url: string, query: string, variables: Record<string, unknown> = {}, user?: { id: string; name: string }) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(user ? { 'x-user-id': user.id, 'x-user-name': user.name } : {}), ...(url === shop.auditUrl ? dashboard : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: any; errors?: Array<{ message: string }> };
}

const HISTORY = /* GraphQL */ `
  query($resource: String!, $id: String!) {
    auditLogs(filter: { resource: [$resource], resourceId: $id }, orderBy: OLDEST_FIRST) {
      totalCount
      edges { node { action author { id name } changes { field kind from to } transactionId } }
    }
  }
`;

describe('the example shop, audited end to end', () => {
  it('records its GraphQL mutations with who made them, serves the history and streams it after commit', async () => {
    const client = createClient({ url: shop.auditWsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { apiKey: dashboardKey } });
    const live = collect(client, 'subscription { auditLogAdded(filter: { resource: ["product"] }) { action resourceId author { id } } }', {}, 4);
    await untilSubscribed(shop.audit.pubsub, 1);

    const ann = { id: 'u1', name: 'Ann' };
    const created = await post(shop.shopUrl, 'mutation { createProduct(sku: "mug", name: "Mug", price: "8.00", stock: 10) { id } }', {}, ann);
    const id = created.data!.createProduct.id as string;
    await post(shop.shopUrl, 'mutation($id: ID!) { updateProduct(id: $id, price: "9.50") { id } }', { id }, ann);
    await post(shop.shopUrl, 'mutation { restock(sku: "mug", quantity: 5) { stock } }', {}, { id: 'u2', name: 'Bob' });
    const customer = await post(shop.shopUrl, 'mutation { createCustomer(email: "c@shop.io", name: "Cy", password: "pw") { id } }', {}, ann);
    const refused = await post(shop.shopUrl, 'mutation($c: ID!, $p: ID!) { placeOrder(customerId: $c, lines: [{ productId: $p, quantity: 99 }]) { id } }', { c: customer.data!.createCustomer.id, p: id }, ann);
    expect(refused.errors?.[0]?.message).toMatch(/Only 15 of mug left/);
    const order = await post(shop.shopUrl, 'mutation($c: ID!, $p: ID!) { placeOrder(customerId: $c, lines: [{ productId: $p, quantity: 2 }]) { id } }', { c: customer.data!.createCustomer.id, p: id }, ann);
    expect(order.errors).toBeUndefined();

    const history = await post(shop.auditUrl, HISTORY, { resource: 'product', id });
    const nodes = history.data!.auditLogs.edges.map((e: { node: unknown }) => e.node);
    expect(history.data!.auditLogs.totalCount).toBe(4); // the refused order left nothing behind
    expect(nodes.map((n: { action: string; author: { id: string } }) => [n.action, n.author.id])).toEqual([
      ['create', 'u1'],
      ['update', 'u1'],
      ['update', 'u2'],
      ['update', 'u1'],
    ]);
    expect(nodes[1].changes).toEqual([{ field: 'price', kind: 'CHANGED', from: '8.00', to: '9.50' }]);
    expect(nodes[2].changes).toEqual([{ field: 'stock', kind: 'CHANGED', from: 10, to: 15 }]);
    expect(nodes[3].changes).toEqual([{ field: 'stock', kind: 'CHANGED', from: 15, to: 13 }]);

    // The order's rows were written in one transaction: "these rows changed together".
    const together = await post(shop.auditUrl, 'query($tx: String!) { auditLogs(filter: { transactionId: $tx }, orderBy: OLDEST_FIRST) { edges { node { resource action } } } }', { tx: nodes[3].transactionId });
    expect(together.data!.auditLogs.edges.map((e: { node: { resource: string } }) => e.node.resource)).toEqual(['product', 'order', 'order_line']);

    const streamed = await live.reached;
    expect(streamed.map((m) => [m.data!.auditLogAdded.action, m.data!.auditLogAdded.author.id])).toEqual([
      ['create', 'u1'],
      ['update', 'u1'],
      ['update', 'u2'],
      ['update', 'u1'],
    ]);
    live.unsubscribe();
    await client.dispose();
  });

  it('records soft deletes and restores made over its API', async () => {
    const created = await post(shop.shopUrl, 'mutation { createProduct(sku: "lamp", name: "Lamp", price: "20.00", stock: 1) { id } }');
    const id = created.data!.createProduct.id as string;
    await post(shop.shopUrl, 'mutation($id: ID!) { discontinueProduct(id: $id) }', { id });
    await post(shop.shopUrl, 'mutation($id: ID!) { restoreProduct(id: $id) }', { id });
    await post(shop.shopUrl, 'mutation { discountAll(percent: 10) }');
    const history = await post(shop.auditUrl, HISTORY, { resource: 'product', id });
    const nodes = history.data!.auditLogs.edges.map((e: { node: { action: string; changes: unknown[] } }) => e.node);
    expect(nodes.map((n: { action: string }) => n.action)).toEqual(['create', 'softDelete', 'restore', 'update']);
    expect(nodes[3].changes).toEqual([{ field: 'price', kind: 'CHANGED', from: '20.00', to: '18.00' }]);
  });
});
