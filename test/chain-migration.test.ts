import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { afterAll, describe, expect, it } from 'vitest';
import { writeAuditEntries } from '../src/audit/writer.js';
import { verifyDatabaseFile } from '../src/cli/verify.js';
import { sqliteDataSourceOptions } from '../src/db/data-source.js';
import { AuditLog } from '../src/db/entities/audit-log.entity.js';
import { migrations } from '../src/db/migrations/index.js';
import { writeTransaction } from '../src/db/transaction.js';
import { canonicalJson } from '../src/shared/chain/canonical.js';

const dir = mkdtempSync(join(tmpdir(), 'auditql-migration-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the chain migration', () => {
  it('chains the entries already stored, per tenant in id order, and the writer goes on from there', async () => {
    const file = join(dir, 'old.sqlite');
    const before = new DataSource({ ...sqliteDataSourceOptions({ database: file }), migrations: migrations.slice(0, 4), entities: [] });
    await before.initialize();
    await before.runMigrations();
    const insert = `INSERT INTO audit_log (tenant_id, resource, action, author_id, author_name, data, meta, ip, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`;
    for (let i = 0; i < 7; i++) {
      const tenant = i % 3 === 0 ? 'acme' : 'default';
      await before.query(insert, [tenant, 'posts', 'update', `u${i}`, `User ${i}`, JSON.stringify({ title: `T${i}`, email: `u${i}@x.io`, a: 1 }), JSON.stringify({ z: 1, a: 2 }), '10.0.0.1', 1_700_000_000_000 + i]);
    }
    await before.destroy();

    const after = new DataSource(sqliteDataSourceOptions({ database: file }));
    await after.initialize();
    try {
      await after.runMigrations({ transaction: 'each' });
      const rows = await after.getRepository(AuditLog).find({ order: { id: 'ASC' } });
      expect(rows.map((r) => [r.tenantId, r.sequence])).toEqual([['acme', 1], ['default', 1], ['default', 2], ['acme', 2], ['default', 3], ['default', 4], ['acme', 3]]);
      expect(rows[1]!.personalPaths).toEqual(['/authorId', '/authorName', '/data/email', '/ip']);
      const [stored] = await after.query(`SELECT data, meta FROM audit_log WHERE id = 1`);
      expect(stored).toEqual({ data: canonicalJson({ title: 'T0', email: 'u0@x.io', a: 1 }), meta: '{"a":2,"z":1}' });

      await writeTransaction(after, (m) => writeAuditEntries(m, [{ tenantId: 'acme', resource: 'posts', action: 'create' }]));
      const [next] = await after.getRepository(AuditLog).find({ order: { id: 'DESC' }, take: 1 });
      expect(next).toMatchObject({ tenantId: 'acme', sequence: 4, previousHash: rows[6]!.hash });
      // Nothing can be written around the chain any more.
      await expect(after.query(`INSERT INTO audit_log (tenant_id, resource, action, created_at) VALUES ('default', 'x', 'y', 1)`)).rejects.toThrow(/need a place in the chain/);
    } finally {
      await after.destroy();
    }
    const results = await verifyDatabaseFile(file);
    expect(results.map((r) => [r.tenant, r.valid, r.checked])).toEqual([['acme', true, 4], ['default', true, 4]]);
  });
});
