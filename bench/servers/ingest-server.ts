import 'reflect-metadata';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSchema, createYoga } from 'graphql-yoga';
import { createAuditServer } from '../../src/app.js';
import { createSqliteDataSource, openDatabase } from '../../src/db/data-source.js';
import { createApiKey } from '../../src/services/api-keys.js';
import { ALL_SCOPES } from '../../src/auth/principal.js';

/**
 * One server for the ingest cases, in a process of its own (so that it has a core to itself and the load
 * generator does not share its event loop): `bare` — graphql-yoga with the same `logEvent`/`logEvents`
 * signatures returning objects with the same fields as ours, built from the input, nothing stored — or
 * `ours`, the audit server on a fresh SQLite file. Tells its parent `{ url, key }` over IPC; answers
 * `count` with the entries stored; exits on `stop`.
 */
const [kind, synchronous = 'FULL', jwtSecret = ''] = process.argv.slice(2);

const BARE_TYPES = /* GraphQL */ `
  scalar JSON
  type Query { ok: Boolean }
  input ActorInput { id: ID! name: String type: String }
  input LogEventInput { resource: String! action: String! resourceId: String name: String data: JSON previousData: JSON meta: JSON author: ActorInput idempotencyKey: String }
  type Actor { id: ID! name: String type: String }
  type AuditLog { id: ID! resource: String! action: String! resourceId: String name: String data: JSON previousData: JSON meta: JSON author: Actor createdAt: String! transactionId: String }
  type Mutation { logEvent(input: LogEventInput!): AuditLog! logEvents(inputs: [LogEventInput!]!): [AuditLog!]! }
`;

async function bare(): Promise<{ url: string; key: string; count(): Promise<number>; stop(): Promise<void> }> {
  let next = 0;
  const entry = (input: Record<string, unknown>) => ({
    id: String(++next),
    ...input,
    author: { id: 'bench', name: 'bench', type: 'user' },
    createdAt: new Date().toISOString(),
    transactionId: `tx-${next}`,
  });
  const yoga = createYoga({
    schema: createSchema({
      typeDefs: BARE_TYPES,
      resolvers: {
        JSON: { __serialize: (v: unknown) => v, __parseValue: (v: unknown) => v, __parseLiteral: () => null } as never,
        Mutation: {
          logEvent: (_: unknown, { input }: { input: Record<string, unknown> }) => entry(input),
          logEvents: (_: unknown, { inputs }: { inputs: Array<Record<string, unknown>> }) => inputs.map(entry),
        },
      },
    }),
    logging: false,
  });
  const server = createServer(yoga);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    key: '',
    count: async () => next,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function ours() {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-ingest-'));
  const ds = await openDatabase(createSqliteDataSource({ database: join(dir, 'ingest.sqlite'), synchronous: synchronous as 'FULL' | 'NORMAL' }));
  const { secret } = await createApiKey(ds, { name: 'bench', scopes: [...ALL_SCOPES] });
  const server = createAuditServer({ dataSource: ds, logging: false, limits: { writesPerSecond: 1_000_000 }, auth: jwtSecret ? { jwtSecret } : undefined });
  const { url } = await server.start({ port: 0, host: '127.0.0.1' });
  return {
    url,
    key: secret,
    count: async () => Number((await ds.query('SELECT COUNT(*) AS n FROM audit_log'))[0].n),
    stop: async () => {
      await server.stop();
      await ds.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const server = kind === 'bare' ? await bare() : await ours();
process.on('message', async (command) => {
  if (command === 'count') process.send!({ count: await server.count() });
  if (command === 'stop') {
    await server.stop();
    process.exit(0);
  }
});
process.send!({ url: server.url, key: server.key });
