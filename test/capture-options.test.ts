import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Column, DataSource, Entity, EntitySchema, PrimaryGeneratedColumn } from 'typeorm';
import { Audited, AuditLog, auditMigrations, createAuditSubscriber, REDACTED } from '../src/index.js';
import { sanitize } from '../src/audit/snapshot.js';
import { resolveEntityOptions } from '../src/audit/options.js';

@Entity({ name: 'internal_job' })
@Audited({ enabled: false })
class InternalJob {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar' }) state!: string;
}

interface Document {
  id: number;
  title: string;
  body: { text: string; signedUrl?: string; apiKey?: string };
  views: number;
}
const DocumentSchema = new EntitySchema<Document>({
  name: 'Document',
  tableName: 'document',
  columns: {
    id: { type: 'integer', primary: true, generated: 'increment' },
    title: { type: 'varchar' },
    body: { type: 'simple-json' },
    views: { type: 'integer', default: 0 },
  },
});

let ds: DataSource;
beforeAll(async () => {
  ds = new DataSource({
    type: 'better-sqlite3',
    database: ':memory:',
    entities: [AuditLog, InternalJob, DocumentSchema],
    migrations: auditMigrations,
    subscribers: [createAuditSubscriber({ entities: { Document: { resource: 'docs', ignore: ['views'] } }, drop: [/^signedUrl$/i] })],
  });
  await ds.initialize();
  await ds.runMigrations();
  await ds.query('CREATE TABLE internal_job (id integer PRIMARY KEY AUTOINCREMENT, state varchar NOT NULL)');
  await ds.query(`CREATE TABLE document (id integer PRIMARY KEY AUTOINCREMENT, title varchar NOT NULL, body text NOT NULL, views integer NOT NULL DEFAULT 0)`);
});
afterAll(() => ds.destroy());

describe('capture options', () => {
  it('leaves out an entity opted out with @Audited({ enabled: false })', async () => {
    await ds.getRepository(InternalJob).save({ state: 'queued' });
    expect(await ds.getRepository(AuditLog).count()).toBe(0);
  });

  it('takes plain options for EntitySchema entities: resource name, ignored fields, drop rules, nested redaction', async () => {
    const repo = ds.getRepository(DocumentSchema);
    const doc = await repo.save({ title: 'Plan', body: { text: 'hello', signedUrl: 'https://s3/x?sig=abc', apiKey: 'k-123' }, views: 0 });
    await repo.save({ ...doc, views: 5 }); // only an ignored field changes: no entry
    await repo.save({ ...doc, views: 6, title: 'Plan B' });
    const entries = await ds.getRepository(AuditLog).find({ order: { id: 'ASC' } });
    expect(entries.map((e) => [e.resource, e.action])).toEqual([['docs', 'create'], ['docs', 'update']]);
    expect(entries[0]!.data).toEqual({ id: doc.id, title: 'Plan', body: { text: 'hello', apiKey: REDACTED } });
    expect(entries[1]!.data).toMatchObject({ title: 'Plan B' });
    expect(JSON.stringify(entries)).not.toMatch(/sig=abc|k-123/);
  });
});

describe('sanitize', () => {
  const metadataLike = { target: class {}, name: 'x', tableName: 'x' } as never;
  const options = resolveEntityOptions(metadataLike, {});

  it('turns dates into ISO strings, bigints into strings, buffers into a description, and cuts cycles', () => {
    const node: Record<string, unknown> = { name: 'n', at: new Date('2026-01-02T03:04:05.678Z'), big: 12345678901234567890n, blob: Buffer.from('abcd') };
    node.self = node;
    node.list = [1, NaN, Infinity, undefined, { password: 'pw' }];
    expect(sanitize(node, options)).toEqual({
      name: 'n',
      at: '2026-01-02T03:04:05.678Z',
      big: '12345678901234567890',
      blob: '<binary 4 bytes>',
      self: '[Circular]',
      list: [1, 'NaN', 'Infinity', null, { password: REDACTED }],
    });
  });

  it('redacts the usual secrets by default, whatever their case or separators', () => {
    expect(sanitize({ Password: 'a', api_key: 'b', refreshToken: 'c', client_secret: 'd', name: 'e' }, options)).toEqual({
      Password: REDACTED,
      api_key: REDACTED,
      refreshToken: REDACTED,
      client_secret: REDACTED,
      name: 'e',
    });
  });
});
