import 'reflect-metadata';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { createSchema, createYoga } from 'graphql-yoga';
import { createAuditServer } from '../../src/app.js';
import { createSqliteDataSource, openDatabase } from '../../src/db/data-source.js';
import { createApiKey } from '../../src/services/api-keys.js';
import { ALL_SCOPES } from '../../src/auth/principal.js';
import { scaled, type CaseResult } from '../stats.js';

const MUTATION = JSON.stringify({
  query: 'mutation($input: LogEventInput!) { logEvent(input: $input) { id } }',
  variables: { input: { resource: 'orders', action: 'update', resourceId: '42', data: { status: 'paid', total: '99.50' }, previousData: { status: 'open', total: '99.50' } } },
});

async function load(url: string, headers: Record<string, string>, body: string, seconds: number) {
  const result = await autocannon({ url, method: 'POST', connections: 50, duration: seconds, headers: { 'content-type': 'application/json', ...headers }, body });
  return { rps: result.requests.average, errors: result.errors + result.non2xx, p99: result.latency.p99 };
}

/** logEvent over HTTP at 50 concurrent connections, against a bare yoga mutation that returns a constant. */
export async function ingest(): Promise<CaseResult[]> {
  const seconds = Math.max(2, Math.min(10, scaled(10)));
  const bare = createYoga({
    schema: createSchema({
      typeDefs: 'type Query { ok: Boolean } input In { resource: String action: String resourceId: String data: String previousData: String } type R { id: ID } type Mutation { logEvent(input: In): R }',
      resolvers: { Mutation: { logEvent: () => ({ id: '1' }) } },
    }),
    logging: false,
  });
  const bareServer: Server = createServer(bare);
  await new Promise<void>((resolve) => bareServer.listen(0, '127.0.0.1', resolve));
  const bareBody = JSON.stringify({ query: 'mutation { logEvent(input: { resource: "orders", action: "update", resourceId: "42", data: "{}", previousData: "{}" }) { id } }' });
  const baseline = await load(`http://127.0.0.1:${(bareServer.address() as AddressInfo).port}/graphql`, {}, bareBody, seconds);
  bareServer.close();

  const results: CaseResult[] = [];
  for (const synchronous of ['FULL', 'NORMAL'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'auditql-ingest-'));
    const ds = await openDatabase(createSqliteDataSource({ database: join(dir, 'ingest.sqlite'), synchronous }));
    const { secret } = await createApiKey(ds, { name: 'bench', scopes: [...ALL_SCOPES] });
    const server = createAuditServer({ dataSource: ds, logging: false, limits: { writesPerSecond: 1_000_000 } });
    const { url } = await server.start({ port: 0, host: '127.0.0.1' });
    const ours = await load(url, { authorization: `Bearer ${secret}` }, MUTATION, seconds);
    const stored = Number((await ds.query('SELECT COUNT(*) AS n FROM audit_log'))[0].n);
    await server.stop();
    await ds.destroy();
    rmSync(dir, { recursive: true, force: true });
    const ratio = ours.rps / baseline.rps;
    results.push({
      case: `ingest (synchronous=${synchronous})`,
      metric: 'logEvent/s',
      value: ours.rps,
      baseline: baseline.rps,
      ratio,
      target: '≥ 0.5× bare yoga',
      met: ratio >= 0.5 && ours.errors === 0,
      detail: `50 connections × ${seconds} s; p99 ${ours.p99} ms (bare ${baseline.p99} ms); ${stored} entries stored, ${ours.errors} errors`,
    });
  }
  return results;
}
