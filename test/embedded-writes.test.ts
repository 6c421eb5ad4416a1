import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { afterAll, describe, expect, it } from 'vitest';
import { createAuditServer } from '../src/app.js';
import { AuditSubscriber } from '../src/audit/capture.subscriber.js';
import { withAuditContext } from '../src/audit/context.js';
import { auditEntities } from '../src/db/entities/index.js';
import { migrations } from '../src/db/migrations/index.js';
import { createApiKey } from '../src/services/api-keys.js';
import { ALL_SCOPES } from '../src/auth/principal.js';

@Entity({ name: 'note' })
class Note {
  @PrimaryGeneratedColumn({ type: 'integer' })
  id!: number;

  @Column({ type: 'varchar' })
  text!: string;
}

const root = mkdtempSync(join(tmpdir(), 'auditql-embedded-'));
const mounts: string[] = [];
afterAll(() => {
  for (const dir of mounts) spawnSync('umount', ['-l', dir]);
  rmSync(root, { recursive: true, force: true });
});

async function appDataSource(file: string): Promise<DataSource> {
  const dataSource = new DataSource({
    type: 'better-sqlite3',
    database: file,
    entities: [Note, ...auditEntities],
    migrations,
    migrationsRun: true,
    subscribers: [AuditSubscriber],
    prepareDatabase: (db: { pragma(source: string): unknown }) => {
      db.pragma('journal_mode = WAL');
    },
  });
  await dataSource.initialize();
  // The app's own table, as its own migration would make it.
  await dataSource.query('CREATE TABLE IF NOT EXISTS "note" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "text" varchar NOT NULL)');
  return dataSource;
}

/** An app that serves the audit API on its own DataSource: its transactions and the API's writes share one connection. */
describe('the audit API embedded in an app on one SQLite connection', () => {
  it('never mixes a logEvent into an app transaction: every acknowledged row is stored, nothing rolled back is', async () => {
    const file = join(root, 'shared.sqlite');
    const dataSource = await appDataSource(file);
    const { secret } = await createApiKey(dataSource, { name: 'writer', scopes: [...ALL_SCOPES] });
    const server = createAuditServer({ dataSource, logging: false, production: false });
    const { url } = await server.start({ port: 0, host: '127.0.0.1' });
    const logEvent = async (name: string) => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
        body: JSON.stringify({ query: `mutation { logEvent(input: { resource: "api", action: "call", name: "${name}" }) { id } }` }),
      });
      return ((await response.json()) as { data?: { logEvent: { id: string } } }).data?.logEvent.id !== undefined;
    };
    // The app runs its transactions one after another, as TypeORM on SQLite requires; each spans several
    // turns of the event loop, and every third one rolls back. Meanwhile API clients write through the server.
    const committed: string[] = [];
    const rolledBack: string[] = [];
    const app = (async () => {
      for (let i = 0; i < 30; i++) {
        const text = `note-${i}`;
        try {
          await withAuditContext({ author: { id: 'app-user' } }, () =>
            dataSource.transaction(async (manager) => {
              await manager.save(Note, { text });
              await new Promise((resolve) => setImmediate(resolve));
              await manager.save(Note, { text: `${text}-b` });
              if (i % 3 === 2) throw new Error('the app changes its mind');
            }),
          );
          committed.push(text, `${text}-b`);
        } catch {
          rolledBack.push(text, `${text}-b`);
        }
      }
    })();
    const api = Promise.all(Array.from({ length: 60 }, (_, i) => logEvent(`event-${i}`)));
    const [, acknowledged] = await Promise.all([app, api]);
    expect(acknowledged.every(Boolean)).toBe(true);
    await server.stop();
    await dataSource.destroy();

    const reopened = await appDataSource(file);
    const notes = (await reopened.query('SELECT text FROM note ORDER BY id')) as Array<{ text: string }>;
    const entries = (await reopened.query(`SELECT resource, name, data FROM audit_log ORDER BY id`)) as Array<{ resource: string; name: string | null; data: string | null }>;
    await reopened.destroy();
    expect(notes.map((n) => n.text)).toEqual(committed);
    expect(entries.filter((e) => e.resource === 'api').map((e) => e.name).sort()).toEqual(Array.from({ length: 60 }, (_, i) => `event-${i}`).sort());
    expect(entries.filter((e) => e.resource === 'note').map((e) => JSON.parse(e.data!).text)).toEqual(committed);
  });
});

describe('an app transaction whose COMMIT fails because the disk is full', () => {
  it('leaves TypeORM able to commit the next transactions once space is back', async () => {
    const dir = join(root, 'fs');
    mkdirSync(dir);
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]).status !== 0) {
      if (process.env.CI) throw new Error('this test needs to mount a small tmpfs');
      console.warn('skipped: cannot mount a tmpfs here (only outside CI)');
      return;
    }
    mounts.push(dir);
    const file = join(dir, 'app.sqlite');
    const dataSource = await appDataSource(file);
    const server = createAuditServer({ dataSource, logging: false, production: false });
    const ballast = join(dir, 'ballast');
    writeFileSync(ballast, Buffer.alloc(256 * 1024, 1));
    const acknowledged: string[] = [];
    let failures = 0;
    const text = 'y'.repeat(8 * 1024);
    for (let i = 0; failures < 3 && i < 1000; i++) {
      try {
        await dataSource.transaction((manager) => manager.save(Note, { text: `${i}:${text}` }));
        acknowledged.push(String(i));
      } catch {
        failures++;
      }
    }
    expect(failures).toBe(3);
    rmSync(ballast);
    for (let i = 1000; i < 1005; i++) {
      await dataSource.transaction((manager) => manager.save(Note, { text: `${i}:short` }));
      acknowledged.push(String(i));
    }
    await server.stop();
    await dataSource.destroy();
    const reopened = await appDataSource(file);
    const stored = (await reopened.query('SELECT text FROM note ORDER BY id')) as Array<{ text: string }>;
    const audited = (await reopened.query(`SELECT COUNT(*) AS n FROM audit_log WHERE resource = 'note'`)) as Array<{ n: number }>;
    await reopened.destroy();
    expect(stored.map((row) => row.text.split(':')[0])).toEqual(acknowledged);
    expect(Number(audited[0]!.n)).toBe(acknowledged.length);
  });
});
