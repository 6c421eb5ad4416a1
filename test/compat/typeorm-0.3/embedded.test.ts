import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { createAuditServer } from '../../../src/app.js';
import { AuditSubscriber } from '../../../src/audit/capture.subscriber.js';
import { withAuditContext } from '../../../src/audit/context.js';
import { auditEntities } from '../../../src/db/entities/index.js';
import { migrations } from '../../../src/db/migrations/index.js';
import { writeTransaction } from '../../../src/db/transaction.js';
import { createApiKey } from '../../../src/services/api-keys.js';
import { ALL_SCOPES } from '../../../src/auth/principal.js';

@Entity({ name: 'note' })
class Note {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar' }) text!: string;
}

const root = mkdtempSync(join(tmpdir(), 'auditql-compat-embedded-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function appDataSource(file: string): Promise<DataSource> {
  const dataSource = new DataSource({ type: 'sqlite', database: file, entities: [Note, ...auditEntities], migrations, migrationsRun: true, subscribers: [AuditSubscriber] });
  await dataSource.initialize();
  await dataSource.query('CREATE TABLE IF NOT EXISTS "note" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "text" varchar NOT NULL)');
  return dataSource;
}

/**
 * The audit API served on an app's own DataSource with the sqlite3 driver (one connection, async
 * transactions): the app's transactions go through `writeTransaction`, as the README asks, and must never
 * run inside the server's writes or the other way round.
 */
describe('the audit API embedded in a TypeORM 0.3 app on the sqlite3 driver', () => {
  it('stores every acknowledged logEvent and every committed app change, and nothing rolled back', async () => {
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
    const committed: string[] = [];
    const app = (async () => {
      for (let i = 0; i < 20; i++) {
        const text = `note-${i}`;
        try {
          await withAuditContext({ author: { id: 'app-user' } }, () =>
            writeTransaction(dataSource, async (manager) => {
              await manager.save(Note, { text });
              await new Promise((resolve) => setImmediate(resolve));
              await manager.save(Note, { text: `${text}-b` });
              if (i % 3 === 2) throw new Error('the app changes its mind');
            }),
          );
          committed.push(text, `${text}-b`);
        } catch (error) {
          if ((error as Error).message !== 'the app changes its mind') throw error;
        }
      }
    })();
    const api = Promise.all(Array.from({ length: 40 }, (_, i) => logEvent(`event-${i}`)));
    const [, acknowledged] = await Promise.all([app, api]);
    expect(acknowledged.every(Boolean)).toBe(true);
    await server.stop();
    const notes = (await dataSource.query('SELECT text FROM note ORDER BY id')) as Array<{ text: string }>;
    const entries = (await dataSource.query(`SELECT resource, name, data FROM audit_log ORDER BY id`)) as Array<{ resource: string; name: string | null; data: string | null }>;
    await dataSource.destroy();
    expect(notes.map((n) => n.text)).toEqual(committed);
    expect(entries.filter((e) => e.resource === 'api').map((e) => e.name).sort()).toEqual(Array.from({ length: 40 }, (_, i) => `event-${i}`).sort());
    expect(entries.filter((e) => e.resource === 'note').map((e) => JSON.parse(e.data!).text)).toEqual(committed);
  });
});
