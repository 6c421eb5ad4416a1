import 'reflect-metadata';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPubSub, createSchema, createYoga } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { createRequire } from 'node:module';

/**
 * Ours runs as users run it, from the compiled package (`npm run build` first): run through tsx, every
 * function the transpiler emits gets a `name` property of its own, which alone added ~4 MB per 1,000
 * subscriptions (measured in a heap snapshot) that the compiled code does not have.
 */
const compiled = createRequire(import.meta.url);
const { createAuditServer } = compiled('../../dist/cjs/app.js') as typeof import('../../src/app.js');
const { createSqliteDataSource, openDatabase } = compiled('../../dist/cjs/db/data-source.js') as typeof import('../../src/db/data-source.js');
const { createApiKey } = compiled('../../dist/cjs/services/api-keys.js') as typeof import('../../src/services/api-keys.js');
const { ALL_SCOPES } = compiled('../../dist/cjs/auth/principal.js') as typeof import('../../src/auth/principal.js');

/**
 * A WebSocket server alone in its process, for the memory case: `bare` (graphql-yoga + graphql-ws +
 * createPubSub) or `ours`. Tells its parent `{ url, key }`; answers `rss` with its resident memory after
 * two full garbage collections (run with --expose-gc); exits on `stop`.
 */
const kind = process.argv[2];

async function bare() {
  const pubsub = createPubSub<{ sample: [{ seq: number; sentAt: number }] }>();
  const yoga = createYoga({
    schema: createSchema({
      typeDefs: 'type Query { ok: Boolean } type Sample { seq: Int! sentAt: Float! } type Subscription { sample: Sample! }',
      resolvers: { Subscription: { sample: { subscribe: () => pubsub.subscribe('sample'), resolve: (p: unknown) => p } } },
    }),
    logging: false,
  });
  const http = createServer(yoga);
  const wss = new WebSocketServer({ server: http, path: '/graphql' });
  useServer({ schema: yoga.getEnveloped().schema }, wss);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return { url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`, key: '', stop: async () => undefined };
}

async function ours() {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-ws-'));
  const ds = await openDatabase(createSqliteDataSource({ database: join(dir, 'ws.sqlite') }));
  const { secret } = await createApiKey(ds, { name: 'bench', scopes: [...ALL_SCOPES] });
  const server = createAuditServer({ dataSource: ds, logging: false, limits: { subscriptionsPerPrincipal: 100_000, subscriptionStartsPerMinute: 100_000 } });
  const { port } = await server.start({ port: 0, host: '127.0.0.1' });
  return {
    url: `ws://127.0.0.1:${port}/graphql`,
    key: secret,
    stop: async () => {
      await server.stop();
      await ds.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const server = kind === 'bare' ? await bare() : await ours();
const gc = (globalThis as { gc?: () => void }).gc;
process.on('message', async (command) => {
  if (command === 'rss') {
    for (let i = 0; i < 2; i++) {
      gc?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    process.send!({ rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed });
  }
  if (command === 'stop') {
    await server.stop();
    process.exit(0);
  }
});
process.send!({ url: server.url, key: server.key });
