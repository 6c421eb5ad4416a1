import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAuditEntries } from '../src/audit/writer.js';
import { writeTransaction } from '../src/db/transaction.js';
import { collect, LOG_EVENT, signToken, startTestApp, type TestApp } from './helpers/test-app.js';
import { createPostgresDatabase, servicesAvailable } from './helpers/services.js';

const ANN = { id: 'user-ann-7391', name: 'Annabel Quist', email: 'annabel.quist@mail.test', phone: '+1 555 0199', ip: '203.0.113.77', agent: 'AnnBrowser/9.1' };
const BOB = { id: 'user-bob-2288', name: 'Bartholomew Ink', email: 'bart.ink@mail.test', phone: '+1 555 0123', ip: '198.51.100.23', agent: 'BobBrowser/4.2' };
const CARL = { id: 'user-carl-5150', name: 'Carlotta Vane', email: 'carlotta.vane@mail.test', ip: '192.0.2.99', agent: 'CarlBrowser/1.0' };
const annValues = [ANN.id, ANN.name, ANN.email, ANN.phone, ANN.ip, ANN.agent];

const ERASE = /* GraphQL */ `
  mutation Erase($authorId: ID!, $reason: String!) {
    eraseActor(authorId: $authorId, reason: $reason) {
      erasedEntries pseudonym storageCleared
      entry { id resource action resourceId sequence author { id name } data meta }
    }
  }
`;
const ENTRIES = /* GraphQL */ `
  query Entries($filter: AuditLogFilter) {
    auditLogs(filter: $filter, first: 500, orderBy: OLDEST_FIRST) {
      totalCount
      edges { node { id cursor resource action resourceId name sequence author { id name type } data previousData meta ip userAgent changes { field from to } } }
    }
  }
`;
type Node = Record<string, any>;

/** The trigrams the search index makes of these texts (case-folded, as its tokenizer does). */
function trigrams(texts: Array<string | null>): Set<string> {
  const found = new Set<string>();
  for (const text of texts) {
    const chars = [...(text ?? '').toLowerCase()];
    for (let i = 0; i + 3 <= chars.length; i++) found.add(chars.slice(i, i + 3).join(''));
  }
  return found;
}

/** A's and B's entries: through the API (user agent from the request) and in an app's own transaction (with an IP). */
async function seedPeople(app: TestApp, people: Array<typeof ANN | typeof CARL>) {
  for (const [i, person] of people.entries()) {
    const data = { customer: { email: person.email, ...('phone' in person ? { phone: person.phone } : {}) }, total: 100 + i, notes: 'x'.repeat(3000) };
    const result = await app.gql(
      LOG_EVENT,
      { input: { resource: 'invoices', action: 'update', resourceId: `inv-${i}`, name: `invoice ${i}`, author: { id: person.id, name: person.name, type: 'user' }, data, previousData: { customer: { email: person.email }, total: 99 }, meta: { requestId: `r-${i}`, contact: { firstName: person.name.split(' ')[0] } } } },
      { 'user-agent': person.agent },
    );
    expect(result.errors).toBeUndefined();
    await writeTransaction(app.dataSource, (manager) =>
      writeAuditEntries(manager, [
        { tenantId: 'default', resource: 'sessions', action: 'login', resourceId: `s-${i}`, author: { id: person.id, name: person.name, type: 'user' }, ip: person.ip, userAgent: person.agent, meta: { userEmail: person.email } },
      ]),
    );
  }
}

/** Every string an entry shows through the API. */
const shown = (nodes: Node[]) => JSON.stringify(nodes);

async function entriesOf(app: TestApp, filter: Record<string, unknown> = {}): Promise<Node[]> {
  const result = await app.gql(ENTRIES, { filter });
  expect(result.errors).toBeUndefined();
  return result.data!.auditLogs.edges.map((e: { node: Node }) => e.node);
}

/** The checks every database must pass after A was erased. */
async function expectAnnErased(app: TestApp, erased: { pseudonym: string; erasedEntries: number; entry: Node }) {
  const all = await entriesOf(app);
  const text = shown(all);
  for (const value of annValues) expect(text).not.toContain(value);
  expect(text).toContain(BOB.email);
  expect(text).toContain(BOB.name);

  const pseudonymous = await entriesOf(app, { authorId: [erased.pseudonym] });
  expect(pseudonymous).toHaveLength(erased.erasedEntries);
  for (const node of pseudonymous) {
    expect(node.author).toEqual({ id: erased.pseudonym, name: null, type: 'user' });
    expect(node.userAgent).toBeNull();
    if (node.resource === 'invoices') {
      expect(node.data.customer.email).toBe('[ERASED]');
      expect(node.data.notes).toHaveLength(3000);
      expect(node.meta.contact.firstName).toBe('[ERASED]');
      expect(node.name).toMatch(/^(invoice \d|checked twice)$/); // the label is not a personal value: it stays as written
    } else {
      expect(node.ip).toBeNull();
      expect(node.meta).toEqual({ userEmail: '[ERASED]' });
    }
  }
  expect(await entriesOf(app, { authorId: [ANN.id] })).toEqual([]);
  for (const node of pseudonymous) {
    const one = await app.gql(`query { auditLog(id: "${node.id}") { author { id name } data previousData meta ip userAgent } }`);
    expect(one.errors).toBeUndefined();
    for (const value of annValues) expect(JSON.stringify(one.data)).not.toContain(value);
  }
  // Search: the author name is gone from the index and the scanned tail alike; B is still found.
  await app.server.indexSearch();
  expect(await entriesOf(app, { search: 'Quist' })).toEqual([]);
  expect((await entriesOf(app, { search: 'Bartholomew' })).length).toBeGreaterThan(0);

  // B untouched.
  const bob = await entriesOf(app, { authorId: [BOB.id] });
  expect(bob.length).toBe(4);
  expect(bob.every((n) => n.author.name === BOB.name)).toBe(true);
  expect(bob.some((n) => n.ip === BOB.ip && n.userAgent === BOB.agent)).toBe(true);

  // The chain still verifies.
  const verified = await app.gql('{ verifyAuditChain { valid checked reason firstInvalidSequence detail } }');
  expect(verified.data!.verifyAuditChain).toMatchObject({ valid: true, reason: null });

  // The record of the erasure names the pseudonym, the reason and the count, never the erased values.
  const records = await entriesOf(app, { resource: ['audit_log'], action: ['erase'] });
  const record = records.find((r) => r.id === erased.entry.id)!;
  expect(record).toMatchObject({ resourceId: erased.pseudonym, meta: { operation: 'eraseActor', reason: 'request GDPR-2026-17', pseudonym: erased.pseudonym, erasedEntries: erased.erasedEntries } });
  for (const value of annValues) expect(JSON.stringify(record)).not.toContain(value);
}

describe('erasure on SQLite', () => {
  let app: TestApp;
  let erased: { pseudonym: string; erasedEntries: number; storageCleared: boolean; entry: Node };
  let cursorBefore: string;
  let annTrigramsBefore: string[] = [];
  const searchPages = () => {
    const db = new Database(app.file, { readonly: true });
    try {
      const blocks = db.prepare(`SELECT "block" FROM "audit_log_search_data"`).pluck().all() as unknown[];
      return Buffer.concat(blocks.filter((block): block is Buffer => Buffer.isBuffer(block)));
    } finally {
      db.close();
    }
  };
  const fileBytes = () => Buffer.concat([readFileSync(app.file), existsSync(`${app.file}-wal`) ? readFileSync(`${app.file}-wal`) : Buffer.alloc(0)]);

  beforeAll(async () => {
    app = await startTestApp();
    const [first] = await entriesOf(app);
    expect(first).toBeUndefined();
    await seedPeople(app, [ANN, BOB, ANN, BOB]);
    await seedPeople(app, [CARL]);
    cursorBefore = (await entriesOf(app))[0]!.cursor;
    // A label changed before the erasure (a row rewritten: the old version must not linger in free space).
    const annFirst = (await entriesOf(app, { authorId: [ANN.id] }))[0]!;
    expect((await app.gql(`mutation { renameLog(id: "${annFirst.id}", name: "checked twice") { id } }`)).errors).toBeUndefined();
    await app.server.indexSearch();
    expect((await entriesOf(app, { search: 'Quist' })).length).toBeGreaterThan(0);
    // Trigrams of A's name that no entry of anyone else has, as the index's pages hold them.
    const others = trigrams(
      (await app.dataSource.query(`SELECT "name", "resource", "resource_id", "action", "author_name" FROM "audit_log" WHERE "author_id" <> ?`, [ANN.id]) as Array<Record<string, string | null>>).flatMap(Object.values),
    );
    const pages = searchPages();
    annTrigramsBefore = [...trigrams([ANN.name])].filter((trigram) => !others.has(trigram) && pages.includes(trigram));
    // The byte check below can see what it looks for: before the erasure every value is in the files.
    const before = fileBytes();
    for (const value of annValues) expect(before.includes(value), value).toBe(true);

    // The erasure turns the connection's automatic checkpoints off while its thread copies the log, then back.
    handle().pragma('wal_autocheckpoint = 777');
    const result = await app.gql(ERASE, { authorId: ANN.id, reason: '  request GDPR-2026-17 ' });
    expect(result.errors).toBeUndefined();
    erased = result.data!.eraseActor;
  });

  const handle = () => (app.dataSource.driver as unknown as { databaseConnection: { pragma(source: string, options?: { simple: boolean }): unknown } }).databaseConnection;

  it("gives the connection its automatic checkpoint setting back", () => {
    expect(handle().pragma('wal_autocheckpoint', { simple: true })).toBe(777);
  });
  afterAll(() => app?.close());

  it('erases every personal value of the author and keeps the chain verifying', async () => {
    expect(erased).toMatchObject({ erasedEntries: 4, storageCleared: true });
    expect(erased.pseudonym).toMatch(/^erased:[0-9a-f]{32}$/);
    expect(erased.entry).toMatchObject({ resource: 'audit_log', action: 'erase', resourceId: erased.pseudonym, author: { id: expect.any(String) } });
    await expectAnnErased(app, erased);
  });

  it('leaves none of the erased bytes in the database file or its write-ahead log', () => {
    const bytes = fileBytes();
    for (const value of annValues) expect(bytes.includes(value), value).toBe(false);
    // …while B's are there, so the check can find what it looks for.
    for (const value of [BOB.name, BOB.email, BOB.ip, BOB.agent]) expect(bytes.includes(value), value).toBe(true);
  });

  it("leaves no term of the erased name in the search index's segments", () => {
    // FTS5 keeps a deleted row's terms in its segment until the segment is merged: the name's trigrams that no
    // other entry has were in the index's pages before the erasure and must be gone now.
    expect(annTrigramsBefore.length).toBeGreaterThan(0);
    const pages = searchPages();
    expect(annTrigramsBefore.filter((trigram) => pages.includes(trigram))).toEqual([]);
  });

  it('replays the stream without the erased values', async () => {
    const client = app.wsClient();
    const stream = collect(client, `subscription($after: String) { auditLogAdded(after: $after) { id author { id name } data previousData meta ip userAgent } }`, { after: cursorBefore });
    const entries = await entriesOf(app);
    await stream.waitFor((messages) => messages.length >= entries.length - 1);
    const text = JSON.stringify(stream.received);
    expect(stream.received.every((m) => !m.errors)).toBe(true);
    expect(text).toContain(erased.pseudonym);
    for (const value of annValues) expect(text).not.toContain(value);
    stream.unsubscribe();
  });

  it('gives the same pseudonym again, erases nothing twice, and records every request', async () => {
    const again = await app.gql(ERASE, { authorId: ANN.id, reason: 'request GDPR-2026-17, again' });
    expect(again.data!.eraseActor).toMatchObject({ erasedEntries: 0, pseudonym: erased.pseudonym });
    const unknown = await app.gql(ERASE, { authorId: 'nobody-here', reason: 'request GDPR-2026-18' });
    expect(unknown.data!.eraseActor.erasedEntries).toBe(0);
    expect(unknown.data!.eraseActor.pseudonym).not.toBe(erased.pseudonym);
    expect(unknown.data!.eraseActor.entry.action).toBe('erase');
  });

  it('refuses bad input and callers without audit:admin', async () => {
    const empty = await app.gql(ERASE, { authorId: ANN.id, reason: '   ' });
    expect(empty.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    const blank = await app.gql(ERASE, { authorId: ' ', reason: 'r' });
    expect(blank.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    const long = await app.gql(ERASE, { authorId: 'x'.repeat(256), reason: 'r' });
    expect(long.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    const reader = await signToken({ sub: 'reader', scope: 'audit:read audit:write' });
    const refused = await app.gql(ERASE, { authorId: BOB.id, reason: 'r' }, { authorization: `Bearer ${reader}` });
    expect(refused.errors![0]!.extensions!.code).toBe('FORBIDDEN');
    expect(refused.data).toBeNull();
    expect((await entriesOf(app, { authorId: [BOB.id] })).length).toBe(4);
  });

  it('erases from the command line, and `auditql verify` passes', async () => {
    const erase = await cli(['erase', '--author', CARL.id, '--reason', 'ticket 88'], app.file);
    expect(erase.out).toMatch(/erased 2 entries of tenant default; the author is now erased:[0-9a-f]{32}; recorded as entry \d+; database rebuilt \(VACUUM\)\n$/);
    expect(erase.code).toBe(0);
    const text = shown(await entriesOf(app));
    for (const value of [CARL.name, CARL.email, CARL.ip, CARL.agent, CARL.id]) expect(text).not.toContain(value);
    const bytes = fileBytes();
    for (const value of [CARL.name, CARL.email, CARL.ip, CARL.agent, CARL.id]) expect(bytes.includes(value), value).toBe(false);
    const record = (await entriesOf(app, { action: ['erase'] })).at(-1)!;
    expect(record).toMatchObject({ author: { type: 'operator' }, meta: { operation: 'auditql erase', reason: 'ticket 88', erasedEntries: 2 } });

    const verify = await cli(['verify', '--database', app.file], app.file);
    expect(verify.out).toMatch(/^default: valid, \d+ entries/m);
    expect(verify.code).toBe(0);
    const refused = await cli(['erase', '--author', CARL.id, '--reason', ' '], app.file);
    expect(refused.code).toBe(2);
    expect(refused.out).toContain('reason must not be empty');
  });

  it('detects an erased digest changed afterwards', async () => {
    const [row] = (await app.dataSource.query(`SELECT id, sequence, erased_digests FROM audit_log WHERE author_id = ? ORDER BY id LIMIT 1`, [erased.pseudonym])) as Array<{ id: number; sequence: number; erased_digests: string }>;
    const digests = JSON.parse(row!.erased_digests) as Record<string, string>;
    expect(Object.keys(digests)).toEqual(expect.arrayContaining(['/authorId', '/authorName', '/data/customer/email']));
    const forged = { ...digests, '/data/customer/email': '0'.repeat(64) };
    await app.dataSource.query(`UPDATE audit_log SET erased_digests = ? WHERE id = ?`, [JSON.stringify(forged), row!.id]);
    try {
      const verified = await app.gql('{ verifyAuditChain { valid reason firstInvalidSequence } }');
      expect(verified.data!.verifyAuditChain).toEqual({ valid: false, reason: 'HASH_MISMATCH', firstInvalidSequence: row!.sequence });
      const offline = await cli(['verify', '--database', app.file], app.file);
      expect(offline.out).toContain(`default: BROKEN at sequence ${row!.sequence}: HASH_MISMATCH`);
      expect(offline.code).toBe(1);
    } finally {
      await app.dataSource.query(`UPDATE audit_log SET erased_digests = ? WHERE id = ?`, [row!.erased_digests, row!.id]);
    }
  });
});

const IVY = { id: 'auditor-ivy-4410', name: 'Ivy Auditor', agent: 'IvyBrowser/2.0' };
const ERASE_COUNTS = /* GraphQL */ `
  mutation Erase($authorId: ID!, $reason: String!) {
    eraseActor(authorId: $authorId, reason: $reason) { erasedEntries erasedMentions pseudonym }
  }
`;
const READS = /* GraphQL */ `
  query Reads {
    auditLogs(filter: { resource: ["audit_log"], action: ["view", "export"] }, first: 100, orderBy: OLDEST_FIRST) {
      edges { node { id action hashVersion author { id name } userAgent meta } }
    }
  }
`;

/**
 * An auditor reads A's entries (a list filtered by A's and B's ids and by A's name, an export by A's id) and
 * B's alone; every read is recorded with its filter. Resolves once the records are committed.
 */
async function readAsAuditor(app: TestApp): Promise<void> {
  const token = await signToken({ sub: IVY.id, name: IVY.name, scope: 'audit:read audit:write' });
  const headers = { authorization: `Bearer ${token}`, 'user-agent': IVY.agent };
  expect((await app.gql(ENTRIES, { filter: { authorId: [ANN.id, BOB.id], search: ANN.name } }, headers)).errors).toBeUndefined();
  expect((await app.gql(ENTRIES, { filter: { authorId: [BOB.id] } }, headers)).errors).toBeUndefined();
  const exported = await fetch(app.url.replace('/graphql', `/export?format=ndjson&authorId=${ANN.id}`), { headers });
  expect(exported.status).toBe(200);
  await exported.text();
  // The group commit keeps order: once this entry is in, every read recorded before it is too.
  expect((await app.gql(LOG_EVENT, { input: { resource: 'marker', action: 'x' } }, headers)).errors).toBeUndefined();
}

/** The auditor's reads: A's values gone from the filters that named A, the auditor's own values kept. */
async function expectMentionsErased(app: TestApp, erased: { erasedMentions: number; pseudonym: string }) {
  expect(erased.erasedMentions).toBe(2);
  const reads = ((await app.gql(READS)).data!.auditLogs.edges as Array<{ node: Node }>).map((e) => e.node).filter((n) => n.author.id === IVY.id);
  expect(reads.map((n) => n.action)).toEqual(['view', 'view', 'export']);
  for (const node of reads) {
    expect(node.hashVersion).toBe(2);
    expect(node.author.name).toBe(IVY.name);
    expect(node.userAgent).toBe(IVY.agent);
  }
  const [both, bobOnly, exported] = reads;
  const bobPseudonym = both!.meta.filter.authorId[1];
  expect(both!.meta.filter).toMatchObject({ authorId: [erased.pseudonym, expect.stringMatching(/^erased:[0-9a-f]{32}$/)], search: '[ERASED]' });
  expect(bobPseudonym).not.toBe(erased.pseudonym);
  expect(bobOnly!.meta.filter.authorId).toEqual([BOB.id]);
  expect(exported!.meta.filter.authorId).toEqual([erased.pseudonym]);
  for (const value of annValues) expect(JSON.stringify(reads)).not.toContain(value);
  const verified = await app.gql('{ verifyAuditChain { valid reason detail } }');
  expect(verified.data!.verifyAuditChain).toMatchObject({ valid: true, reason: null });
}

describe("erasure of others' reads of the log that named the person", () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ evidence: { metaAudit: { mode: 'all', windowMs: 0 } } });
    await seedPeople(app, [ANN, BOB]);
    await readAsAuditor(app);
  });
  afterAll(() => app?.close());

  it("erases the filter's values that name A, keeps the reader's, and the chain verifies", async () => {
    // Before: the reads hold A's id and name, so the checks below can see what they look for.
    const before = JSON.stringify((await app.gql(READS)).data);
    expect(before).toContain(ANN.id);
    expect(before).toContain(ANN.name);
    const result = await app.gql(ERASE_COUNTS, { authorId: ANN.id, reason: 'request GDPR-2026-19' });
    expect(result.errors).toBeUndefined();
    expect(result.data!.eraseActor.erasedEntries).toBe(2);
    // Nothing of A anywhere in the file: the reads' filters included (read before any other filtered read).
    const bytes = Buffer.concat([readFileSync(app.file), existsSync(`${app.file}-wal`) ? readFileSync(`${app.file}-wal`) : Buffer.alloc(0)]);
    for (const value of annValues) expect(bytes.includes(value), value).toBe(false);
    await expectMentionsErased(app, result.data!.eraseActor);
    const again = await app.gql(ERASE_COUNTS, { authorId: ANN.id, reason: 'again' });
    expect(again.data!.eraseActor).toMatchObject({ erasedEntries: 0, erasedMentions: 0 });
    const verify = await cli(['verify', '--database', app.file], app.file);
    expect(verify.out).toMatch(/^default: valid, \d+ entries/m);
  });

  it("detects the reader's values or the kept salt changed afterwards in the file", async () => {
    const [row] = (await app.dataSource.query(`SELECT id, sequence, author_name, salt FROM audit_log WHERE author_id = ? AND erased_digests IS NOT NULL ORDER BY id LIMIT 1`, [IVY.id])) as Array<{ id: number; sequence: number; author_name: string; salt: string }>;
    expect(row!.salt).toMatch(/^[0-9a-f]{32}$/);
    for (const [column, value, reason] of [['author_name', 'Mallory', 'HASH_MISMATCH'], ['salt', '0'.repeat(32), 'HASH_MISMATCH'], ['salt', null, 'MALFORMED_ENTRY']] as const) {
      await app.dataSource.query(`UPDATE audit_log SET ${column} = ? WHERE id = ?`, [value, row!.id]);
      try {
        const offline = await cli(['verify', '--database', app.file], app.file);
        expect(offline.out, column).toContain(`default: BROKEN at sequence ${row!.sequence}: ${reason}`);
        expect(offline.code).toBe(1);
      } finally {
        await app.dataSource.query(`UPDATE audit_log SET author_name = ?, salt = ? WHERE id = ?`, [row!.author_name, row!.salt, row!.id]);
      }
    }
    expect((await cli(['verify', '--database', app.file], app.file)).code).toBe(0);
  });

  it('then erases the reader whole, and the chain still verifies', async () => {
    const result = await app.gql(ERASE_COUNTS, { authorId: IVY.id, reason: 'request GDPR-2026-20' });
    expect(result.data!.eraseActor.erasedEntries).toBeGreaterThanOrEqual(4);
    const text = JSON.stringify((await app.gql(READS)).data);
    for (const value of [IVY.id, IVY.name, IVY.agent]) expect(text).not.toContain(value);
    const verified = await app.gql('{ verifyAuditChain { valid reason detail } }');
    expect(verified.data!.verifyAuditChain).toMatchObject({ valid: true, reason: null });
  });
});

const ERASE_RECORDS = /* GraphQL */ `
  mutation Erase($authorId: ID!, $reason: String!, $records: [AuditRecordInput!]) {
    eraseActor(authorId: $authorId, reason: $reason, records: $records) { erasedEntries erasedMentions erasedRecordEntries recordEntriesLeft pseudonym }
  }
`;
const CLARA = { id: 'clerk-clara-31', name: 'Clara Clerk', agent: 'ClerkBrowser/3.0' };

/** A clerk changes A's user record and B's: entries about records, authored by someone else. */
async function clerkEdits(app: TestApp): Promise<void> {
  const token = await signToken({ sub: CLARA.id, name: CLARA.name, scope: 'audit:write' });
  const headers = { authorization: `Bearer ${token}`, 'user-agent': CLARA.agent };
  for (const [person, record] of [[ANN, 'u-ann'], [BOB, 'u-bob']] as const) {
    const input = { resource: 'users', resourceId: record, action: 'update', data: { email: person.email, phone: person.phone, plan: 'pro' }, previousData: { email: `old.${person.email}`, plan: 'free' } };
    expect((await app.gql(LOG_EVENT, { input }, headers)).errors).toBeUndefined();
  }
}

/** A's record's values gone from the clerk's entry, the clerk's own and B's record's kept; the chain verifies. */
async function expectRecordErased(app: TestApp) {
  const [ann, bob] = await entriesOf(app, { resource: ['users'] });
  expect(ann).toMatchObject({
    resourceId: 'u-ann',
    author: { id: CLARA.id, name: CLARA.name },
    userAgent: CLARA.agent,
    data: { email: '[ERASED]', phone: '[ERASED]', plan: 'pro' },
    previousData: { email: '[ERASED]', plan: 'free' },
  });
  expect(bob).toMatchObject({ resourceId: 'u-bob', data: { email: BOB.email, phone: BOB.phone } });
  const verified = await app.gql('{ verifyAuditChain { valid reason detail } }');
  expect(verified.data!.verifyAuditChain).toMatchObject({ valid: true, reason: null });
}

describe("erasure of the values in entries others wrote about the person's records", () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ evidence: { metaAudit: { mode: 'all', windowMs: 0 } } });
    await seedPeople(app, [ANN, BOB]);
    await clerkEdits(app);
    // An auditor looks at the entries about A's record, and at those about B's.
    const token = await signToken({ sub: IVY.id, name: IVY.name, scope: 'audit:read audit:write' });
    const headers = { authorization: `Bearer ${token}`, 'user-agent': IVY.agent };
    expect((await app.gql(ENTRIES, { filter: { resource: ['users'], resourceId: 'u-ann' } }, headers)).errors).toBeUndefined();
    expect((await app.gql(ENTRIES, { filter: { resourceId: 'u-bob' } }, headers)).errors).toBeUndefined();
    expect((await app.gql(LOG_EVENT, { input: { resource: 'marker', action: 'x' } }, headers)).errors).toBeUndefined();
  });
  afterAll(() => app?.close());

  it('erases them whoever wrote them, keeps the writer, and leaves the bytes nowhere', async () => {
    expect(shown(await entriesOf(app, { resource: ['users'] }))).toContain(ANN.phone);
    const result = await app.gql(ERASE_RECORDS, { authorId: ANN.id, reason: 'request GDPR-2026-21', records: [{ resource: 'users', resourceId: 'u-ann' }] });
    expect(result.errors).toBeUndefined();
    expect(result.data!.eraseActor).toMatchObject({ erasedEntries: 2, erasedMentions: 1, erasedRecordEntries: 1, recordEntriesLeft: 0 });
    await expectRecordErased(app);
    // The auditor's read of A's record lost the record's id from its filter; the read of B's kept it.
    const reads = ((await app.gql(READS)).data!.auditLogs.edges as Array<{ node: Node }>).map((e) => e.node).filter((n) => n.author.id === IVY.id);
    expect(reads.map((n) => [n.meta.filter.resourceId, n.author.name, n.userAgent])).toEqual([
      ['[ERASED]', IVY.name, IVY.agent],
      ['u-bob', IVY.name, IVY.agent],
    ]);
    const bytes = Buffer.concat([readFileSync(app.file), existsSync(`${app.file}-wal`) ? readFileSync(`${app.file}-wal`) : Buffer.alloc(0)]);
    for (const value of [...annValues, `old.${ANN.email}`]) expect(bytes.includes(value), value).toBe(false);
    expect(bytes.includes(BOB.phone)).toBe(true);
  });

  it('refuses records it cannot take', async () => {
    const blank = await app.gql(ERASE_RECORDS, { authorId: ANN.id, reason: 'r', records: [{ resource: 'users', resourceId: ' ' }] });
    expect(blank.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    const many = await app.gql(ERASE_RECORDS, { authorId: ANN.id, reason: 'r', records: Array.from({ length: 101 }, (_, i) => ({ resource: 'users', resourceId: String(i) })) });
    expect(many.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    const cliRefused = await cli(['erase', '--author', BOB.id, '--reason', 'r', '--record', 'users'], app.file);
    expect(cliRefused.code).toBe(2);
    expect(cliRefused.out).toContain('--record takes resource:resourceId');
  });

  it('erases from the command line, and counts the entries an earlier version hashed with one salt, which it leaves', async () => {
    // An entry about B's record as an earlier auditql wrote it: hashed with version 1 (simulated).
    await app.dataSource.query(`UPDATE audit_log SET hash_version = 1 WHERE resource = 'users' AND resource_id = 'u-bob'`);
    const erase = await cli(['erase', '--author', BOB.id, '--reason', 'ticket 90', '--record', 'users:u-bob'], app.file);
    expect(erase.out).toMatch(/^erased 2 entries of tenant default, the filter of 1 reads of the log that named them \(1 about them left: hashed by an earlier version with one salt\); /);
    expect(erase.code).toBe(0);
    const [, bob] = await entriesOf(app, { resource: ['users'] });
    expect(bob!.data.email).toBe(BOB.email);
  });
});

/** Runs the built CLI on the SQLite file `file`; resolves with its exit code and output. */
function cli(args: string[], file: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/cjs/cli.js', ...args], { env: { ...process.env, DATABASE_URL: `sqlite:${file}`, META_AUDIT: 'off' } });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

const postgres = await servicesAvailable('test/erasure.test.ts', 'postgres');

describe.skipIf(!postgres)('erasure on PostgreSQL', () => {
  let app: TestApp;
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  beforeAll(async () => {
    database = await createPostgresDatabase();
    app = await startTestApp({ postgresUrl: database.url });
  });
  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('erases the author the same way, and the chain verifies', async () => {
    await seedPeople(app, [ANN, BOB, ANN, BOB]);
    expect((await entriesOf(app, { search: 'quist' })).length).toBeGreaterThan(0);
    const result = await app.gql(ERASE, { authorId: ANN.id, reason: 'request GDPR-2026-17' });
    expect(result.errors).toBeUndefined();
    expect(result.data!.eraseActor).toMatchObject({ erasedEntries: 4, storageCleared: false });
    await expectAnnErased(app, result.data!.eraseActor);
  });

  it("erases the values in entries others wrote about the author's records", async () => {
    const other = await startTestApp({ postgresUrl: database.url });
    try {
      await clerkEdits(other);
      const result = await other.gql(ERASE_RECORDS, { authorId: ANN.id, reason: 'request GDPR-2026-21', records: [{ resource: 'users', resourceId: 'u-ann' }] });
      expect(result.errors).toBeUndefined();
      expect(result.data!.eraseActor).toMatchObject({ erasedRecordEntries: 1, recordEntriesLeft: 0 });
      await expectRecordErased(other);
    } finally {
      await other.close();
    }
  });

  it("erases the filters of others' reads that named the author", async () => {
    const other = await startTestApp({ postgresUrl: database.url, evidence: { metaAudit: { mode: 'all', windowMs: 0 } } });
    try {
      await seedPeople(other, [ANN, BOB]);
      await readAsAuditor(other);
      const result = await other.gql(ERASE_COUNTS, { authorId: ANN.id, reason: 'request GDPR-2026-19' });
      expect(result.errors).toBeUndefined();
      await expectMentionsErased(other, result.data!.eraseActor);
    } finally {
      await other.close();
    }
  });
});
