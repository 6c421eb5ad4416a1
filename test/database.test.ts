import { stripVTControlCharacters } from 'node:util';
import { spawnSync } from 'node:child_process';
import { migrations } from '../src/db/migrations/index.js';
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteDataSource, openDatabase } from '../src/db/data-source.js';
import { createStore } from '../src/db/store.js';
import { startTestApp } from './helpers/test-app.js';

const dir = mkdtempSync(join(tmpdir(), 'auditql-db-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function pragmas(file: string, synchronous?: 'FULL' | 'NORMAL') {
  const ds = await openDatabase(createSqliteDataSource({ database: file, synchronous }));
  const [journal] = await ds.query('PRAGMA journal_mode');
  const [sync] = await ds.query('PRAGMA synchronous');
  // Freed content is zeroed (README, "Erasure").
  expect(await ds.query('PRAGMA secure_delete')).toEqual([{ secure_delete: 1 }]);
  await ds.destroy();
  return { journal: journal.journal_mode, synchronous: sync.synchronous };
}

describe('SQLite connection settings', () => {
  it('uses WAL with synchronous=FULL on a new file and on a reopened one', async () => {
    const file = join(dir, 'full.sqlite');
    expect(await pragmas(file)).toEqual({ journal: 'wal', synchronous: 2 });
    expect(await pragmas(file)).toEqual({ journal: 'wal', synchronous: 2 });
  });

  it('keeps temporary data in memory during maintenance on its own connection only, and puts the setting back', async () => {
    for (const ownsConnection of [true, false]) {
      const ds = await openDatabase(createSqliteDataSource({ database: join(dir, `maintenance-${ownsConnection}.sqlite`) }));
      const handle = (ds.driver as unknown as { databaseConnection: { pragma(source: string, options: { simple: true }): unknown } }).databaseConnection;
      const store = createStore(ds, { ownsConnection });
      const run = store.maintenance!()!;
      // MEMORY is 2; an app's connection keeps its setting (the change would drop its temporary tables).
      expect(handle.pragma('temp_store', { simple: true })).toBe(ownsConnection ? 2 : 0);
      await run.end();
      expect(handle.pragma('temp_store', { simple: true })).toBe(0);
      await store.close();
      if (ds.isInitialized) await ds.destroy();
    }
  });

  it('can be set to synchronous=NORMAL', async () => {
    expect(await pragmas(join(dir, 'normal.sqlite'), 'NORMAL')).toEqual({ journal: 'wal', synchronous: 1 });
  });

  it('creates the schema with migrations, not synchronize, and applies them once', async () => {
    const file = join(dir, 'migrations.sqlite');
    const ds = await openDatabase(createSqliteDataSource({ database: file }));
    expect(ds.options.synchronize).toBe(false);
    const applied = await ds.query('SELECT name FROM migrations');
    expect(applied.map((m: { name: string }) => m.name)).toEqual(migrations.map((m) => m.name));
    expect(applied[0].name).toBe('CreateAuditLog1763800000000');
    const indexes = await ds.query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_log' AND name LIKE 'idx_%'`);
    expect(indexes.length).toBeGreaterThanOrEqual(6);
    await ds.destroy();
    const again = await openDatabase(createSqliteDataSource({ database: file }));
    expect(await again.query('SELECT name FROM migrations')).toHaveLength(migrations.length);
    await again.destroy();
  });

  it('ormconfig.ts exports the one DataSource configuration: migrations, never synchronize', async () => {
    const { default: dataSource, options } = await import('../ormconfig.js');
    expect(options.synchronize).toBe(false);
    expect(dataSource.options.migrations).toEqual(migrations);
    expect(options.entities.map((e: { name: string }) => e.name).sort()).toEqual(['ApiKey', 'AuditLog']);
  });

  it('answers /health while the database is reachable and 503 when it is not; queries then fail masked', async () => {
    const app = await startTestApp();
    const health = app.url.replace('/graphql', '/health');
    const ok = await fetch(health);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: 'ok', database: 'up' });
    await app.dataSource.destroy();
    expect((await fetch(health)).status).toBe(503);
    const result = await app.gql('{ auditLogs { totalCount } }');
    expect(result.errors?.[0]?.message).toBe('Unexpected error.');
    expect(result.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(JSON.stringify(result)).not.toMatch(/stack|SELECT|DataSource|typeorm/i);
    await app.close();
  });

  it("is what TypeORM's own CLI uses for migrations (ormconfig.ts)", () => {
    const file = join(dir, 'cli.sqlite');
    // TypeORM colours its output when it thinks a terminal (or CI) is watching.
    const lines = (output: string) => stripVTControlCharacters(output).trim().split('\n');
    const show = () => spawnSync('npm', ['run', '--silent', 'migration:show'], { env: { ...process.env, DATABASE_URL: `sqlite:${file}` }, encoding: 'utf8' });
    expect(lines(show().stdout)).toEqual(migrations.map((m) => `[ ] ${m.name}`));
    spawnSync(process.execPath, ['dist/cjs/cli.js', 'migrate'], { env: { ...process.env, DATABASE_URL: `sqlite:${file}` } });
    expect(lines(show().stdout)).toEqual(migrations.map((m) => `[X] ${migrations.indexOf(m) + 1} ${m.name}`));
  });
});
