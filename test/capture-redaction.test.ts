import 'reflect-metadata';
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Column, DataSource, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { Audited, AuditLog, auditMigrations, createAuditSubscriber, DEFAULT_REDACTED_FIELDS, diff, REDACTED, withAuditContext } from '../src/index.js';
import { createFieldMatcher, nameParts } from '../src/audit/field-rules.js';

describe('field rules', () => {
  it('split names into parts at camelCase humps, acronyms, digits and any separator', () => {
    expect(nameParts('userPasswordHash')).toEqual(['user', 'password', 'hash']);
    expect(nameParts('refresh_token')).toEqual(['refresh', 'token']);
    expect(nameParts('X-API-Key')).toEqual(['x', 'api', 'key']);
    expect(nameParts('APIKey')).toEqual(['api', 'key']);
    expect(nameParts('oauth2Token')).toEqual(['oauth', '2', 'token']);
    expect(nameParts('counters.likes')).toEqual(['counters', 'likes']);
  });

  it('match by name part, case-insensitively, whatever the case style; RegExps test the whole name; allow wins', () => {
    const matches = createFieldMatcher({ match: [...DEFAULT_REDACTED_FIELDS, /^pin$/i], allow: ['tokenCount'] });
    const redacted = ['password', 'Password', 'PASSWORD', 'secretToken', 'userPassword', 'apiKey', 'api_key', 'api-key', 'X-Api-Key', 'accessToken', 'refresh_token',
      'creditCardNumber', 'credit_card_number', 'passwordHash', 'password_digest', 'clientSecret', 'idToken', 'sessionId', 'authorization', 'apiKeys', 'tokens', 'pin', 'PIN'];
    const kept = ['name', 'email', 'tokenCount', 'passwordless', 'secretariat', 'tokenizer', 'keyboard', 'pinned', 'spinner', 'author', 'cardinality'];
    expect(redacted.filter((f) => !matches(f))).toEqual([]);
    expect(kept.filter((f) => matches(f))).toEqual([]);
  });

  it('match a rule of several words written together, in one case: PostgreSQL folds unquoted names to lower case', () => {
    const matches = createFieldMatcher({ match: DEFAULT_REDACTED_FIELDS });
    const redacted = ['apikey', 'APIKEY', 'x_apikey', 'privatekey', 'cardnumber', 'CREDITCARD', 'sessionid', 'SESSIONID', 'accesskeys', 'pass_word'];
    const kept = ['apikeyboard', 'cardnumbering', 'sessionidle', 'rapidkey', 'privatekeynote'];
    expect(redacted.filter((f) => !matches(f))).toEqual([]);
    expect(kept.filter((f) => matches(f))).toEqual([]);
  });
});

@Entity({ name: 'member' })
class Member {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar', length: 64 }) name!: string;
  @Column({ type: 'varchar', length: 64, nullable: true }) secretToken!: string | null;
  @Column({ type: 'varchar', length: 64, nullable: true }) userPassword!: string | null;
  @Column({ type: 'varchar', length: 64, nullable: true }) passwordHash!: string | null;
  @Column({ type: 'varchar', length: 64, nullable: true, name: 'api_key' }) api_key!: string | null;
  @Column({ type: 'varchar', length: 64, nullable: true }) accessToken!: string | null;
  @Column({ type: 'varchar', length: 64, nullable: true }) refresh_token!: string | null;
  @Column({ type: 'varchar', length: 64, nullable: true }) creditCardNumber!: string | null;
  @Column({ type: 'integer', default: 0 }) tokenCount!: number;
  @Column({ type: 'varchar', length: 16, nullable: true }) pin!: string | null;
  @Column({ type: 'simple-json', nullable: true }) settings!: { theme: string; integrations?: Array<{ service: string; apiKey: string }>; 'x-auth-token'?: string } | null;
}

@Entity({ name: 'device' })
@Audited({ redact: ['serial'], unredact: ['accessToken'] })
class Device {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar', length: 64 }) serial!: string;
  @Column({ type: 'varchar', length: 64 }) accessToken!: string;
}

/** A secret as primary key: the name `token` is redacted by default. */
@Entity({ name: 'reset_token' })
class ResetToken {
  @PrimaryColumn({ type: 'varchar', length: 64 }) token!: string;
  @Column({ type: 'varchar', length: 64 }) email!: string;
  @Column({ type: 'integer', default: 0 }) uses!: number;
}

/** A composite key, one part of it secret. */
@Entity({ name: 'api_credential' })
class ApiCredential {
  @PrimaryColumn({ type: 'integer' }) ownerId!: number;
  @PrimaryColumn({ type: 'varchar', length: 64 }) apiKey!: string;
  @Column({ type: 'varchar', length: 64 }) label!: string;
}

const SECRET = /s3cr3t-\d/;
const KEY_SECRET = 'a key known to the app, not to the log';
let ds: DataSource;
let custom: DataSource;
let keyed: DataSource;

async function open(subscriber: new () => object): Promise<DataSource> {
  const source = new DataSource({ type: 'better-sqlite3', database: ':memory:', entities: [AuditLog, Member, Device, ResetToken, ApiCredential], migrations: auditMigrations, subscribers: [subscriber] });
  await source.initialize();
  await source.runMigrations();
  await source.query(
    `CREATE TABLE member (id integer PRIMARY KEY AUTOINCREMENT, name varchar(64) NOT NULL, secretToken varchar(64), userPassword varchar(64), passwordHash varchar(64), api_key varchar(64),
     accessToken varchar(64), refresh_token varchar(64), creditCardNumber varchar(64), tokenCount integer NOT NULL DEFAULT 0, pin varchar(16), settings text)`,
  );
  await source.query('CREATE TABLE device (id integer PRIMARY KEY AUTOINCREMENT, serial varchar(64) NOT NULL, accessToken varchar(64) NOT NULL)');
  await source.query('CREATE TABLE reset_token (token varchar(64) PRIMARY KEY NOT NULL, email varchar(64) NOT NULL, uses integer NOT NULL DEFAULT 0)');
  await source.query('CREATE TABLE api_credential (ownerId integer NOT NULL, apiKey varchar(64) NOT NULL, label varchar(64) NOT NULL, PRIMARY KEY (ownerId, apiKey))');
  return source;
}

beforeAll(async () => {
  ds = await open(createAuditSubscriber());
  custom = await open(createAuditSubscriber({ redact: [...DEFAULT_REDACTED_FIELDS, /^pin$/i], unredact: ['tokenCount'] }));
  keyed = await open(createAuditSubscriber({ redactedKeySecret: KEY_SECRET }));
});
afterAll(async () => {
  await ds.destroy();
  await custom.destroy();
  await keyed.destroy();
});

/** Every write path on a row keyed by a secret; returns what the app's table held after its writes, and the entries. */
async function writeResetToken(source: DataSource, token: string) {
  const repo = source.getRepository(ResetToken);
  await repo.save({ token, email: 'ann@example.com' });
  await repo.save({ token, email: 'ann@example.com', uses: 1 });
  await repo.update({ token }, { uses: 2 });
  await source.createQueryBuilder().update(ResetToken).set({ uses: 3 }).where('token = :token', { token }).execute();
  const stored = await source.query('SELECT * FROM reset_token WHERE token = ?', [token]);
  await repo.remove(await repo.findOneByOrFail({ token }));
  await repo.insert({ token, email: 'bob@example.com' });
  await repo.delete({ token });
  const entries = await source.getRepository(AuditLog).find({ where: { resource: 'reset_token' }, order: { id: 'ASC' } });
  return { stored, entries };
}

const member = (n: number) => ({
  name: 'Ann',
  secretToken: `s3cr3t-${n}a`,
  userPassword: `s3cr3t-${n}b`,
  passwordHash: `s3cr3t-${n}c`,
  api_key: `s3cr3t-${n}d`,
  accessToken: `s3cr3t-${n}e`,
  refresh_token: `s3cr3t-${n}f`,
  creditCardNumber: `s3cr3t-${n}g`,
  tokenCount: 3,
  pin: '1234',
  settings: { theme: 'dark', integrations: [{ service: 'mail', apiKey: `s3cr3t-${n}h` }], 'x-auth-token': `s3cr3t-${n}i` },
});

describe('redaction by default', () => {
  it('masks secrets by name part at any depth of data, previousData and meta, inside arrays, and stores their values nowhere', async () => {
    const repo = ds.getRepository(Member);
    const saved = await withAuditContext({ meta: { authorization: 'Bearer s3cr3t-0x', request: { cookies: ['s3cr3t-0y'], path: '/members' } } }, () => repo.save(member(1)));
    await repo.update({ id: saved.id }, { ...member(2), name: 'Ann B' });
    const [created, updated] = await ds.getRepository(AuditLog).find({ order: { id: 'ASC' } });
    expect(created!.data).toEqual({
      id: saved.id,
      name: 'Ann',
      secretToken: REDACTED,
      userPassword: REDACTED,
      passwordHash: REDACTED,
      api_key: REDACTED,
      accessToken: REDACTED,
      refresh_token: REDACTED,
      creditCardNumber: REDACTED,
      tokenCount: REDACTED, // "token" matches by name part; an app un-redacts it (see below)
      pin: '1234',
      settings: { theme: 'dark', integrations: [{ service: 'mail', apiKey: REDACTED }], 'x-auth-token': REDACTED },
    });
    expect(created!.meta).toEqual({ authorization: REDACTED, request: { cookies: REDACTED, path: '/members' } });
    expect(updated!.previousData).toMatchObject({ passwordHash: REDACTED, settings: { integrations: [{ apiKey: REDACTED }] } });
    expect(JSON.stringify(await ds.query('SELECT * FROM audit_log'))).not.toMatch(SECRET);
  });

  it('records that a redacted field changed, never its value', async () => {
    const repo = ds.getRepository(Member);
    const saved = await repo.save(member(3));
    await repo.update({ id: saved.id }, { passwordHash: 's3cr3t-4c', settings: { ...member(3).settings, integrations: [{ service: 'mail', apiKey: 's3cr3t-4h' }] } });
    const last = (await ds.getRepository(AuditLog).find({ order: { id: 'DESC' }, take: 1 }))[0]!;
    expect(last.action).toBe('update');
    expect(last.redactedChanges).toEqual(['passwordHash', 'settings']);
    expect(diff(last.previousData, last.data, last.redactedChanges ?? []).map((c) => [c.field, c.from, c.to])).toEqual([
      ['passwordHash', REDACTED, REDACTED],
      ['settings', { theme: 'dark', integrations: [{ service: 'mail', apiKey: REDACTED }], 'x-auth-token': REDACTED }, { theme: 'dark', integrations: [{ service: 'mail', apiKey: REDACTED }], 'x-auth-token': REDACTED }],
    ]);
    expect(JSON.stringify(await ds.query('SELECT * FROM audit_log'))).not.toMatch(SECRET);
  });
});

describe('a redacted primary key', () => {
  it('is stored nowhere, not even as the resource id, while the app writes its rows as they are', async () => {
    const { stored, entries } = await writeResetToken(ds, 's3cr3t-7t');
    expect(stored).toEqual([{ token: 's3cr3t-7t', email: 'ann@example.com', uses: 3 }]);
    expect(entries.map((e) => [e.action, e.resourceId])).toEqual([
      ['create', REDACTED], ['update', REDACTED], ['update', REDACTED], ['update', REDACTED], ['delete', REDACTED], ['create', REDACTED], ['delete', REDACTED],
    ]);
    expect(entries[1]!.data).toEqual({ token: REDACTED, email: 'ann@example.com', uses: 1 });
    const rows = await ds.query("SELECT resource_id, data, previous_data, meta FROM audit_log WHERE resource = 'reset_token'");
    expect(rows).toHaveLength(7);
    expect(JSON.stringify(rows)).not.toMatch(SECRET);
  });

  it('with redactedKeySecret, is a keyed digest: one per record, not the value, not guessable without the secret', async () => {
    const digest = (value: string) => `hmac-sha256:${createHmac('sha256', KEY_SECRET).update(value).digest('hex')}`;
    const first = await writeResetToken(keyed, 's3cr3t-8a');
    expect(new Set(first.entries.map((e) => e.resourceId))).toEqual(new Set([digest('s3cr3t-8a')]));
    const second = await writeResetToken(keyed, 's3cr3t-8b');
    expect(new Set(second.entries.slice(first.entries.length).map((e) => e.resourceId))).toEqual(new Set([digest('s3cr3t-8b')]));

    await keyed.getRepository(ApiCredential).save({ ownerId: 7, apiKey: 's3cr3t-8c', label: 'ci' });
    const [credential] = await keyed.getRepository(AuditLog).find({ where: { resource: 'api_credential' } });
    expect(credential!.resourceId).toBe(JSON.stringify({ apiKey: digest('s3cr3t-8c'), ownerId: 7 }));
    expect(JSON.stringify(await keyed.query('SELECT resource_id, data, previous_data, meta FROM audit_log'))).not.toMatch(SECRET);
  });

  it('refuses a key secret too short to be one, when the subscriber is configured', () => {
    expect(() => createAuditSubscriber({ redactedKeySecret: 'short' })).toThrow(/at least 16 bytes/);
  });
});

describe('redaction configured', () => {
  it('takes strings and RegExps, and an allow-list that un-redacts', async () => {
    const saved = await custom.getRepository(Member).save(member(5));
    const [entry] = await custom.getRepository(AuditLog).find({ where: { resourceId: String(saved.id), resource: 'member' } });
    expect(entry!.data).toMatchObject({ tokenCount: 3, pin: REDACTED, accessToken: REDACTED });
  });

  it('per entity: adds its own rules and un-redacts its own fields', async () => {
    const device = await custom.getRepository(Device).save({ serial: 'SN-1', accessToken: 'visible-by-choice' });
    const [entry] = await custom.getRepository(AuditLog).find({ where: { resource: 'device', resourceId: String(device.id) } });
    expect(entry!.data).toEqual({ id: device.id, serial: REDACTED, accessToken: 'visible-by-choice' });
  });
});
