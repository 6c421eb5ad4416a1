import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEntities, auditMigrations, AuditSubscriber, withAuditContext, writeTransaction } from '../src/index.js';
import { createAuditServer, type AuditServer } from '../src/app.js';
import { verifyDatabaseFile } from '../src/cli/verify.js';
import { sqliteDataSourceOptions } from '../src/db/data-source.js';
import { deferred, LOG_EVENT, signToken, TEST_JWT_SECRET } from './helpers/test-app.js';

@Entity({ name: 'widget' })
class Widget {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar' }) name!: string;
}

const dir = mkdtempSync(join(tmpdir(), 'auditql-chain-concurrency-'));
const file = join(dir, 'shared.sqlite');
let dataSource: DataSource;
let server: AuditServer;
let urlA: string;
let urlB: string;
let other: ChildProcess;

beforeAll(async () => {
  dataSource = new DataSource({ ...sqliteDataSourceOptions({ database: file }), entities: [...auditEntities, Widget], subscribers: [AuditSubscriber], migrations: auditMigrations });
  await dataSource.initialize();
  await dataSource.runMigrations();
  await dataSource.query('CREATE TABLE widget (id integer PRIMARY KEY AUTOINCREMENT, name varchar NOT NULL)');
  server = createAuditServer({ dataSource, logging: false, auth: { jwtSecret: TEST_JWT_SECRET }, evidence: { checkpointIntervalMs: 0, metaAudit: { mode: 'off' } } });
  urlA = (await server.start({ port: 0, host: '127.0.0.1' })).url.replace('localhost', '127.0.0.1');
  // A second server process on the same file, started as users start it.
  other = spawn(process.execPath, ['dist/cjs/cli.js', 'serve'], {
    env: { ...process.env, DATABASE_URL: `sqlite:${file}`, PORT: '0', HOST: '127.0.0.1', JWT_SECRET: TEST_JWT_SECRET, META_AUDIT: 'off', CHECKPOINT_INTERVAL: '0', NODE_ENV: 'production' },
  });
  const listening = deferred<string>();
  let output = '';
  other.stdout!.on('data', (chunk: Buffer) => {
    output += chunk;
    const port = /listening on http:\/\/[^:]+:(\d+)/.exec(output)?.[1];
    if (port) listening.resolve(`http://127.0.0.1:${port}/graphql`);
  });
  other.on('exit', (code) => listening.reject(new Error(`second server exited (${code}): ${output}`)));
  urlB = await listening.promise;
});

afterAll(async () => {
  if (other.exitCode === null) {
    const exited = new Promise((resolve) => other.once('exit', resolve));
    other.kill('SIGTERM');
    await exited;
  }
  await server.stop();
  if (dataSource.isInitialized) await dataSource.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function logEvent(url: string, token: string, i: number): Promise<boolean> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: LOG_EVENT, variables: { input: { resource: 'http', action: 'create', resourceId: String(i), data: { email: `p${i}@example.com` } } } }),
  });
  const body = (await response.json()) as { errors?: unknown[] };
  return !body.errors;
}

describe('the chain under every concurrent writer', () => {
  it('stays gapless and verifiable: HTTP writers on two processes, captured ORM transactions and rollbacks, two tenants', async () => {
    const tokens = { default: await signToken({ sub: 'w1', scope: 'audit:write' }), acme: await signToken({ sub: 'w2', scope: 'audit:write', tenant: 'acme' }) };
    const tenantOf = (i: number) => (i % 2 ? 'acme' : 'default') as keyof typeof tokens;
    const http = Array.from({ length: 120 }, (_, i) => logEvent(i % 4 < 2 ? urlA : urlB, tokens[tenantOf(i)], i).then((ok) => ({ kind: 'http' as const, tenant: tenantOf(i), ok, entries: 1 })));
    const captured = Array.from({ length: 36 }, (_, i) =>
      withAuditContext({ tenantId: tenantOf(i), author: { id: 'app' } }, () =>
        writeTransaction(dataSource, async (manager) => {
          await manager.save(Widget, { name: `w${i}-a` });
          await manager.save(Widget, { name: `w${i}-b` });
          if (i % 3 === 0) throw new Error('rolled back on purpose');
        }),
      ).then(
        () => ({ kind: 'orm' as const, tenant: tenantOf(i), ok: true, entries: 2 }),
        () => ({ kind: 'orm' as const, tenant: tenantOf(i), ok: false, entries: 2 }),
      ),
    );
    const outcomes = await Promise.all([...http, ...captured]);
    expect(outcomes.filter((o) => o.kind === 'http' && !o.ok)).toEqual([]);
    expect(outcomes.filter((o) => o.kind === 'orm' && !o.ok)).toHaveLength(12);

    for (const tenant of ['default', 'acme'] as const) {
      const expected = outcomes.filter((o) => o.ok && o.tenant === tenant).reduce((sum, o) => sum + o.entries, 0);
      const sequences = ((await dataSource.query(`SELECT sequence FROM audit_log WHERE tenant_id = ? ORDER BY sequence`, [tenant])) as Array<{ sequence: number }>).map((r) => r.sequence);
      expect(sequences).toEqual(Array.from({ length: expected }, (_, i) => i + 1));
    }
    const widgets = await dataSource.query('SELECT COUNT(*) AS n FROM widget');
    expect(widgets[0].n).toBe(48);
    const results = await verifyDatabaseFile(file);
    expect(results.map((r) => [r.tenant, r.valid])).toEqual([['acme', true], ['default', true]]);
  });
});
