import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PurgeResult } from '../src/services/retention.js';
import { ARCHIVE_LOCK_FILE } from '../src/services/archive-folder-lock.js';
import { eraseActor } from '../src/services/erasure.js';
import { describePurge } from '../src/cli/retention.js';
import type { TenantDraft } from '../src/audit/group-commit.js';
import { entryRows, insertEntries } from '../src/audit/writer.js';
import { runSync } from '../src/db/sql.js';
import { FILTER_PERSONAL_PATHS } from '../src/services/meta-audit.js';
import { DEFAULT_PERSONAL_FIELDS, nameRuleMatcher } from '../src/shared/chain/personal.js';
import { seedBulk } from './helpers/seed.js';
import { logEvents, startTestApp, type TestApp } from './helpers/test-app.js';
import { runCli as cli } from './helpers/cli.js';

const DAY = 86_400_000;
const OLD = 3000;
const FRESH = 5;


const CHART = 'query($filter: AuditLogFilter) { activityChart(filter: $filter, interval: DAY) { count } }';
const total = (buckets: Array<{ count: number }>) => buckets.reduce((sum, b) => sum + b.count, 0);

describe('retention on a real server and SQLite file', () => {
  let app: TestApp;
  let archiveDir: string;
  let purged: PurgeResult[];
  const start = Date.now() - 400 * DAY;

  beforeAll(async () => {
    archiveDir = mkdtempSync(join(tmpdir(), 'auditql-archives-'));
    app = await startTestApp({ retention: { archiveDir, archiveEntries: 1000 } });
    // Expired entries (400 days old, one a minute), then a few written now through the API.
    seedBulk(app.file, OLD, (i) => ({ created_at: start + i * 60_000 }));
    await logEvents(app, Array.from({ length: FRESH }, (_, i) => ({ resource: 'fresh', action: 'create', resourceId: String(i) })));
  });
  afterAll(async () => {
    await app?.close();
    rmSync(archiveDir, { recursive: true, force: true });
  });

  it('sets and reads a tenant policy; refuses another tenant and nonsense', async () => {
    const set = await app.gql('mutation { setRetentionPolicy(days: 30) { tenant days tenantDays defaultDays anchorSequence } }');
    expect(set.errors).toBeUndefined();
    expect(set.data!.setRetentionPolicy).toEqual({ tenant: 'default', days: 30, tenantDays: 30, defaultDays: null, anchorSequence: 0 });
    const other = await app.gql('mutation { setRetentionPolicy(tenant: "acme", days: 1) { days } }');
    expect(other.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const bad = await app.gql('mutation { setRetentionPolicy(days: -3) { days } }');
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const read = await app.gql('{ retentionPolicy { days tenantDays } }');
    expect(read.data!.retentionPolicy).toEqual({ days: 30, tenantDays: 30 });
  });

  it('purges the expired entries in batches, archiving them first, and the chain still verifies from the new anchor', async () => {
    const oldChart = { from: new Date(start - DAY).toISOString(), to: new Date(start + 10 * DAY).toISOString() };
    const before = await app.gql(CHART, { filter: oldChart });
    expect(total(before.data!.activityChart)).toBe(OLD);
    const progress: number[] = [];
    purged = await app.server.purgeExpired({ onProgress: (p) => progress.push(p.anchorSequence) });
    expect(purged).toHaveLength(1);
    expect(purged[0]).toMatchObject({ tenant: 'default', count: OLD, fromSequence: 1, toSequence: OLD, anchorSequence: OLD });
    expect(purged[0]!.error).toBeUndefined();
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(OLD);
    expect(purged[0]!.archives).toHaveLength(3);

    const verified = await app.gql('{ verifyAuditChain { valid checked anchorSequence headSequence reason detail } }');
    // The fresh entries and the purge's own entry.
    expect(verified.data!.verifyAuditChain).toEqual({ valid: true, checked: FRESH + 1, anchorSequence: OLD, headSequence: OLD + FRESH + 1, reason: null, detail: null });

    const after = await app.gql(CHART, { filter: oldChart });
    expect(total(after.data!.activityChart)).toBe(0);
    const rollup = new Database(app.file, { readonly: true });
    // The rollup rows of the purged period went with its entries.
    expect(rollup.prepare(`SELECT COUNT(*) AS n FROM audit_activity_by WHERE start < ?`).get(start + 10 * DAY)).toEqual({ n: 0 });
    for (const table of ['audit_activity_daily_by', 'audit_activity_daily']) {
      expect(rollup.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE day < ?`).get(start + 9 * DAY)).toEqual({ n: 0 });
    }
    rollup.close();

    const entry = await app.gql('{ auditLogs(filter: { action: ["retention_purge"] }) { edges { node { resource author { id } data sequence } } } }');
    const node = entry.data!.auditLogs.edges[0].node;
    expect(node).toMatchObject({ resource: 'audit_log', author: { id: 'auditql:retention' }, sequence: OLD + FRESH + 1 });
    expect(node.data).toMatchObject({ fromSequence: 1, toSequence: OLD, count: OLD, days: 30 });
    expect(node.data.archives).toHaveLength(3);

    const policy = await app.gql('{ retentionPolicy { anchorSequence } }');
    expect(policy.data!.retentionPolicy.anchorSequence).toBe(OLD);
    // Nothing more has expired: a second run removes nothing and writes no entry.
    expect(await app.server.purgeExpired()).toEqual([]);
  });

  it('auditql verify passes on the database, reporting the signed anchor, and through the archives from the genesis', async () => {
    const live = await cli(['verify', '--database', app.file]);
    expect(live.out).toMatch(new RegExp(`default: valid, ${FRESH + 1} entries, from anchor ${OLD} \\(signed checkpoint\\)`));
    expect(live.code).toBe(0);
    const whole = await cli(['verify', '--database', app.file, '--archives', archiveDir]);
    expect(whole.out).toMatch(new RegExp(`default: valid, ${OLD + FRESH + 1} entries, from the genesis, through 3 archives`));
    expect(whole.code).toBe(0);
  });

  it('an archive verifies offline with the CLI, and fails after a hostile edit', async () => {
    const files = readdirSync(archiveDir).filter((name) => name.endsWith('.ndjson.gz')).sort();
    expect(files).toHaveLength(3);
    const second = join(archiveDir, files[1]!);
    const good = await cli(['verify', '--file', second]);
    expect(good.out).toMatch(/default: valid, 1000 entries, from anchor 1000 \(signed checkpoint\)/);
    expect(good.code).toBe(0);

    const lines = gunzipSync(readFileSync(second)).toString('utf8').trimEnd().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ format: 'auditql-archive', version: 1, tenant: 'default', fromSequence: 1001 });
    expect(JSON.parse(lines[1]!)).toMatchObject({ checkpoint: 'start', sequence: 1000 });
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ checkpoint: 'end', sequence: 2000, count: 1000 });
    const edited = [...lines];
    const victim = JSON.parse(edited[10]!);
    victim.action = 'delete-evidence';
    edited[10] = JSON.stringify(victim);
    const forged = join(app.dir, 'forged.ndjson.gz');
    writeFileSync(forged, gzipSync(`${edited.join('\n')}\n`));
    const bad = await cli(['verify', '--file', forged]);
    expect(bad.out).toMatch(new RegExp(`BROKEN at sequence ${victim.sequence}: HASH_MISMATCH`));
    expect(bad.code).toBe(1);
    // Cut short: the end checkpoint is gone.
    writeFileSync(forged, gzipSync(`${lines.slice(0, -1).join('\n')}\n`));
    const cut = await cli(['verify', '--file', forged]);
    expect(cut.out).toMatch(/BROKEN at sequence 2001: HEAD_MISMATCH/);
  });

  it('a hostile edit in the live table after the purge is still detected, and so is an anchor moved by hand', async () => {
    const db = new Database(app.file);
    db.prepare(`UPDATE audit_log SET resource_id = 'forged' WHERE tenant_id = 'default' AND sequence = ?`).run(OLD + 2);
    db.close();
    const edited = await app.gql('{ verifyAuditChain { valid reason firstInvalidSequence anchorSequence } }');
    expect(edited.data!.verifyAuditChain).toEqual({ valid: false, reason: 'HASH_MISMATCH', firstInvalidSequence: OLD + 2, anchorSequence: OLD });
    const viaCli = await cli(['verify', '--database', app.file]);
    expect(viaCli.code).toBe(1);
    expect(viaCli.out).toMatch(new RegExp(`BROKEN at sequence ${OLD + 2}: HASH_MISMATCH`));

    // Deleting entries and moving the anchor past them without the key leaves an anchor nobody signed.
    const raw = new Database(app.file);
    const next = raw.prepare(`SELECT hash FROM audit_log WHERE tenant_id = 'default' AND sequence = ?`).get(OLD + 3) as { hash: string };
    raw.prepare(`DELETE FROM audit_log WHERE tenant_id = 'default' AND sequence <= ?`).run(OLD + 3);
    raw.prepare(`UPDATE audit_chain_head SET anchor_sequence = ?, anchor_hash = ? WHERE tenant_id = 'default'`).run(OLD + 3, next.hash);
    raw.close();
    const moved = await app.gql('{ verifyAuditChain { valid reason firstInvalidSequence } }');
    expect(moved.data!.verifyAuditChain).toEqual({ valid: false, reason: 'CHECKPOINT_MISMATCH', firstInvalidSequence: OLD + 3 });
    const movedCli = await cli(['verify', '--database', app.file]);
    expect(movedCli.code).toBe(1);
    expect(movedCli.out).toMatch(/CHECKPOINT_MISMATCH \(the chain starts at anchor 3003, which no signed checkpoint vouches for\)/);
  });
});

describe('a purge batch that has used its time', () => {
  let app: TestApp;
  afterAll(() => app?.close());

  it('stops removing there and anchors at the last entry it removed; the chain verifies', async () => {
    // No time at all: each batch removes one entry (the least that still makes progress), however many it read.
    app = await startTestApp({ retention: { days: 30, batchTargetMs: 0, maxBatch: 50 } });
    seedBulk(app.file, 60, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000 }));
    const anchors: number[] = [];
    const [result] = await app.server.purgeExpired({ onProgress: (progress) => anchors.push(progress.anchorSequence) });
    expect(result).toMatchObject({ count: 60, batches: 60, anchorSequence: 60 });
    expect(anchors).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const verified = await app.gql('{ verifyAuditChain { valid anchorSequence } }');
    expect(verified.data!.verifyAuditChain).toEqual({ valid: true, anchorSequence: 60 });
  });
});

describe('a purge whose archive folder cannot be written', () => {
  let app: TestApp;
  let root: string;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'auditql-archive-fault-'));
  });
  afterAll(async () => {
    await app?.close();
    rmSync(root, { recursive: true, force: true });
  });
  const purges = async () => (await app.gql('{ auditLogs(filter: { action: ["retention_purge"] }) { edges { node { data meta } } } }')).data!.auditLogs.edges;

  it('removes nothing when the first archive cannot be written, and says why', async () => {
    const notAFolder = join(root, 'taken');
    writeFileSync(notAFolder, 'a file where the archive folder should be');
    app = await startTestApp({ retention: { days: 30, archiveDir: notAFolder, archiveEntries: 100 } });
    seedBulk(app.file, 300, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000 }));
    await expect(app.server.purgeExpired()).rejects.toThrow(/EEXIST|ENOTDIR/);
    expect((await app.gql('{ auditLogs { totalCount } }')).data!.auditLogs.totalCount).toBe(300);
    expect(await purges()).toEqual([]);
    expect((await app.gql('{ verifyAuditChain { valid anchorSequence } }')).data!.verifyAuditChain).toEqual({ valid: true, anchorSequence: 0 });
    await app.close();
  });

  it('stops at the archive it cannot write, records what the finished archives let it remove, and goes on when the folder is back', async () => {
    const archives = join(root, 'archives');
    const moved = join(root, 'archives-moved');
    app = await startTestApp({ retention: { days: 30, archiveDir: archives, archiveEntries: 100 } });
    seedBulk(app.file, 300, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000 }));
    // Once the first archive's entries are gone, the folder turns into a file (a disk taken away, say).
    const purging = app.server.purgeExpired({
      onProgress: (progress) => {
        if (progress.anchorSequence !== 100) return;
        renameSync(archives, moved);
        writeFileSync(archives, 'not a folder');
      },
    });
    await expect(purging).rejects.toThrow(/EEXIST|ENOTDIR/);
    expect(readdirSync(moved).filter((name) => name.endsWith('.ndjson.gz'))).toHaveLength(1);
    const [recorded] = await purges();
    expect(recorded.node.data).toMatchObject({ fromSequence: 1, toSequence: 100, count: 100 });
    expect(recorded.node.meta.stoppedBy).toMatch(/EEXIST|ENOTDIR/);
    // Entries 101–300 and the purge's own entry.
    expect((await app.gql('{ auditLogs { totalCount } }')).data!.auditLogs.totalCount).toBe(201);
    expect((await app.gql('{ verifyAuditChain { valid anchorSequence } }')).data!.verifyAuditChain).toEqual({ valid: true, anchorSequence: 100 });

    rmSync(archives);
    renameSync(moved, archives);
    const [resumed] = await app.server.purgeExpired();
    expect(resumed).toMatchObject({ fromSequence: 101, toSequence: 300, count: 200 });
    expect(readdirSync(archives).filter((name) => name.endsWith('.ndjson.gz'))).toHaveLength(3);
    const verified = await cli(['verify', '--archives', archives], { DATABASE_URL: `sqlite:${app.file}` });
    expect(verified.out).toMatch(/^default: valid, .*from the genesis, through 3 archives/m);
    expect(verified.code).toBe(0);
  });
});

describe('auditql retention, from the command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-retention-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('purges a file the way the schedule does, archiving first, and the chain verifies through the archives', async () => {
    const app = await startTestApp({ database: join(dir, 'audit.sqlite') });
    seedBulk(app.file, 120, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000 }));
    await logEvents(app, [{ resource: 'fresh', action: 'create' }]);
    await app.close();
    const archives = join(dir, 'archives');
    const env = { DATABASE_URL: `sqlite:${join(dir, 'audit.sqlite')}` };
    const nonsense = await cli(['retention', '--days', 'soon'], env);
    expect(nonsense.code).not.toBe(0);
    expect(nonsense.out).toMatch(/--days: a whole number of days/);
    const purged = await cli(['retention', '--days', '30', '--archive-dir', archives], env);
    expect(purged.out).toMatch(/^default: removed 120 entries older than .* \(sequence 1–120\), archived in 1 file; the chain now starts after 120$/m);
    expect(purged.code).toBe(0);
    expect(readdirSync(archives).filter((name) => name.endsWith('.ndjson.gz'))).toHaveLength(1);
    const again = await cli(['retention', '--days', '30'], env);
    expect(again.out).toMatch(/^nothing has expired$/m);
    const verified = await cli(['verify', '--archives', archives], env);
    expect(verified.out).toMatch(/^default: valid, .*from the genesis, through 1 archive/m);
    expect(verified.code).toBe(0);
  });
});

describe('the commands that work on an existing log, given a database that does not exist', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-no-db-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuse it in one line, and create nothing (no empty database, no signing key)', async () => {
    const missing = join(dir, 'typo', 'audit.sqlite');
    for (const args of [['retention', '--days', '30'], ['export', '--format', 'ndjson'], ['erase', '--author', 'zed', '--reason', 'request 7']]) {
      const run = await cli(args, { DATABASE_URL: `sqlite:${missing}` });
      expect(run.code, args[0]).toBe(1);
      expect(run.out.trim(), args[0]).toBe(`Configuration error: no database at ${missing} (DATABASE_URL); the server creates it on its first start`);
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});

const IVY = { id: 'ivy', name: 'Ivy Auditor', type: 'user' };

/** A read of the log by Ivy, recorded with its filter as the server records one. */
const readBy = (authorIds: string[], search?: string): TenantDraft => ({
  tenantId: 'default', resource: 'audit_log', action: 'view', author: IVY, userAgent: 'IvyBrowser/2.0',
  meta: { operation: 'auditLogs', filter: { authorId: authorIds, ...(search ? { search } : {}) } }, personal: FILTER_PERSONAL_PATHS,
});

/** Writes entries dated 400 days back straight into the file, chained as the writer chains them. */
function seedOld(file: string, drafts: TenantDraft[]) {
  const rows = entryRows(drafts, { transactionId: 'seeded', createdAt: new Date(Date.now() - 400 * DAY) });
  const db = new Database(file);
  try {
    db.transaction(() => runSync(db, insertEntries('sqlite', rows, { chained: true, personal: nameRuleMatcher(DEFAULT_PERSONAL_FIELDS) }, { keepTimes: true })))();
  } finally {
    db.close();
  }
  return rows;
}

describe('erasure of an author whose entries were archived by retention', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-archive-erasure-'));
  let app: TestApp | undefined;
  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('erases them in the archive files too, which still verify, and leaves the name nowhere in them', async () => {
    const archiveDir = join(dir, 'archives');
    app = await startTestApp({ retention: { days: 30, archiveDir, archiveEntries: 40 } });
    const alice = (i: number) => i % 10 === 0;
    seedBulk(app.file, 100, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000, author_id: alice(i) ? 'alice' : `u${i}`, author_name: alice(i) ? 'Alice Liddell' : `Author ${i}` }));
    const [purged] = await app.server.purgeExpired();
    expect(purged).toMatchObject({ count: 100 });
    expect(purged!.archives).toHaveLength(3);
    const archives = () => readdirSync(archiveDir).filter((name) => name !== ARCHIVE_LOCK_FILE);
    const bytes = () => archives().map((name) => gunzipSync(readFileSync(join(archiveDir, name))).toString('utf8')).join('\n');
    expect(bytes()).toContain('Alice Liddell');

    const erased = await app.gql('mutation { eraseActor(authorId: "alice", reason: "request 7") { erasedEntries erasedArchivedEntries archiveFiles pseudonym } }');
    expect(erased.errors).toBeUndefined();
    expect(erased.data!.eraseActor).toMatchObject({ erasedEntries: 0, erasedArchivedEntries: 10, archiveFiles: 3 });
    const after = bytes();
    expect(after).not.toContain('Alice Liddell');
    expect(after).not.toContain('"alice"');
    expect(after).toContain(erased.data!.eraseActor.pseudonym);
    expect(after).toContain('Author 11');
    // Nothing but the archives, and the folder's lock file, which stays for the next rewrite.
    expect(readdirSync(archiveDir).filter((name) => !name.endsWith('.ndjson.gz'))).toEqual([ARCHIVE_LOCK_FILE]);

    for (const name of archives()) {
      const one = await cli(['verify', '--file', join(archiveDir, name)]);
      expect(one.out).toMatch(/^default: valid, /m);
    }
    await app.dataSource.query('PRAGMA wal_checkpoint(TRUNCATE)');
    const whole = await cli(['verify', '--database', app.file, '--archives', archiveDir]);
    expect(whole.out).toMatch(/^default: valid, .*from the genesis, through 3 archives/m);
    expect(whole.code).toBe(0);
    // An export read after the purge starts at the anchor: verified offline, it says so, and with the kept
    // checkpoints it says the anchor is signed.
    await logEvents(app, [{ resource: 'fresh', action: 'create' }]);
    const exported = await fetch(app.url.replace('/graphql', '/export?format=ndjson&orderBy=OLDEST_FIRST'), { headers: { authorization: `Bearer ${app.adminKey}` } });
    const exportFile = join(dir, 'export.ndjson');
    writeFileSync(exportFile, await exported.text());
    const plain = await cli(['verify', '--file', exportFile]);
    expect(plain.out).toMatch(/^default: valid, \d+ entries, from anchor 100 \(taken as given: no signed checkpoint\)/m);
    const download = await fetch(app.url.replace('/graphql', '/checkpoints'), { headers: { authorization: `Bearer ${app.adminKey}` } });
    const checkpoints = join(dir, 'checkpoints.json');
    writeFileSync(checkpoints, await download.text());
    const signed = await cli(['verify', '--file', exportFile, '--checkpoints', checkpoints]);
    expect(signed.out).toMatch(/^default: valid, \d+ entries, from anchor 100 \(signed checkpoint\)/m);
    // Again: nothing left to erase, and the files stay as they are.
    const again = await app.gql('mutation { eraseActor(authorId: "alice", reason: "request 7") { erasedArchivedEntries archiveFiles } }');
    expect(again.data!.eraseActor).toEqual({ erasedArchivedEntries: 0, archiveFiles: 0 });
  });

  it("erases in the archives the filters of others' reads that named the author, keeping the reader's values", async () => {
    const archiveDir = join(dir, 'archives-reads');
    const reads = await startTestApp({ retention: { days: 30, archiveDir, archiveEntries: 40 } });
    try {
      const rows = seedOld(reads.file, [
        { tenantId: 'default', resource: 'invoices', action: 'update', author: { id: 'alice', name: 'Alice Liddell', type: 'user' }, data: { total: 1 } },
        readBy(['alice', 'bob'], 'Alice Liddell'),
        readBy(['bob']),
        { tenantId: 'default', resource: 'users', resourceId: 'u-alice', action: 'update', author: IVY, data: { email: 'alice@wonder.land', plan: 'pro' } },
      ]);
      expect(rows.map((row) => row.hashVersion)).toEqual([1, 2, 2, 2]);
      const [purged] = await reads.server.purgeExpired();
      expect(purged).toMatchObject({ count: 4 });
      const bytes = () => readdirSync(archiveDir).filter((name) => name.endsWith('.ndjson.gz')).map((name) => gunzipSync(readFileSync(join(archiveDir, name))).toString('utf8')).join('\n');
      expect(bytes()).toContain('Alice Liddell');

      const erased = await reads.gql(
        'mutation { eraseActor(authorId: "alice", reason: "request 12", records: [{ resource: "users", resourceId: "u-alice" }]) { erasedEntries erasedMentions erasedArchivedEntries archiveFiles pseudonym } }',
      );
      expect(erased.errors).toBeUndefined();
      expect(erased.data!.eraseActor).toMatchObject({ erasedEntries: 0, erasedMentions: 0, erasedArchivedEntries: 3, archiveFiles: 1 });
      const after = bytes();
      expect(after).not.toContain('alice@wonder.land');
      expect(after).toContain('"plan":"pro"');
      expect(after).not.toContain('Alice Liddell');
      expect(after).not.toContain('"alice"');
      const lines = after.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, any>).filter((line) => line.resource === 'audit_log');
      expect(after.split('\n').filter((line) => line.includes('u-alice')).every((line) => line.includes('Ivy Auditor'))).toBe(true);
      expect(lines.map((line) => [line.meta.filter.authorId, line.authorName, line.userAgent])).toEqual([
        [[erased.data!.eraseActor.pseudonym, expect.stringMatching(/^erased:[0-9a-f]{32}$/)], 'Ivy Auditor', 'IvyBrowser/2.0'],
        [['bob'], 'Ivy Auditor', 'IvyBrowser/2.0'],
      ]);
      const whole = await cli(['verify', '--database', reads.file, '--archives', archiveDir]);
      expect(whole.out).toMatch(/^default: valid, .*from the genesis, through 1 archive/m);
      expect(whole.code).toBe(0);
    } finally {
      await reads.close();
    }
  });

  it("puts into the archive a read whose filter an erasure reached after the purge had read it and before it removed it", async () => {
    const archiveDir = join(dir, 'archives-read-race');
    const racing = await startTestApp({ retention: { days: 30, archiveDir, archiveEntries: 40 } });
    try {
      seedOld(racing.file, [readBy(['alice'], 'Alice Liddell'), readBy(['bob']), { tenantId: 'default', resource: 'invoices', action: 'update', author: IVY }]);
      const bytes = (path: string) => gunzipSync(readFileSync(path)).toString('utf8');
      const [purged] = await racing.server.purgeExpired({
        onArchived: async (path) => {
          expect(bytes(path)).toContain('Alice Liddell');
          // An erasure that cannot see the unfinished file: the read's filter is erased in the table only.
          const erasure = await eraseActor({ dataSource: racing.dataSource, store: racing.server.store }, { tenantId: 'default', authorId: 'alice', reason: 'request 13', by: { id: 'dpo', name: null, type: 'user' }, operation: 'test' });
          expect(erasure).toMatchObject({ erasedEntries: 0, erasedMentions: 1, erasedArchivedEntries: 0 });
        },
      });
      expect(purged).toMatchObject({ count: 3, erasedInArchives: 1 });
      const [file] = purged!.archives;
      const text = bytes(file!);
      expect(text).not.toContain('Alice Liddell');
      expect(text).not.toContain('"alice"');
      expect(text).toContain('IvyBrowser/2.0');
      expect((await cli(['verify', '--file', file!])).out).toMatch(/^default: valid, /m);
      await racing.dataSource.query('PRAGMA wal_checkpoint(TRUNCATE)');
      const whole = await cli(['verify', '--database', racing.file, '--archives', archiveDir]);
      expect(whole.out).toMatch(/^default: valid, .*from the genesis, through 1 archive/m);
    } finally {
      await racing.close();
    }
  });

  it('erases in an archive the entries an erasure reached after the purge had read them and before it removed them, waiting while another process rewrites the folder', async () => {
    const archiveDir = join(dir, 'archives-race');
    const racing = await startTestApp({ retention: { days: 30, archiveDir, archiveEntries: 40 } });
    try {
      seedBulk(racing.file, 100, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000, author_id: i % 10 === 0 ? 'alice' : `u${i}`, author_name: i % 10 === 0 ? 'Alice Liddell' : `Author ${i}` }));
      const bytes = (name: string) => gunzipSync(readFileSync(join(archiveDir, name))).toString('utf8');
      const seen: string[] = [];
      let holder: Database.Database | undefined;
      let waited = 0;
      // The first archive is complete and none of its entries removed yet: an erasure now (one that could
      // not see the file, as one running while it was written) erases alice in the table only.
      const [purged] = await racing.server.purgeExpired({
        onArchived: async (path) => {
          seen.push(path);
          if (seen.length > 1) return;
          expect(bytes(basename(path))).toContain('Alice Liddell');
          const erasure = await eraseActor({ dataSource: racing.dataSource, store: racing.server.store }, { tenantId: 'default', authorId: 'alice', reason: 'request 8', by: { id: 'dpo', name: null, type: 'user' }, operation: 'test' });
          expect(erasure).toMatchObject({ erasedEntries: 10, erasedArchivedEntries: 0 });
          // And another process is rewriting the folder when the purge comes to erase in it: the purge waits.
          holder = new Database(join(archiveDir, ARCHIVE_LOCK_FILE));
          holder.exec('BEGIN EXCLUSIVE');
        },
        onArchiveLockWait: () => {
          waited++;
          holder!.exec('ROLLBACK');
          holder!.close();
        },
      });
      expect(waited).toBe(1);
      expect(purged).toMatchObject({ count: 100, erasedInArchives: 4 });
      expect(describePurge(purged!)).toMatch(/; 4 archived entries erased meanwhile /);
      expect(purged!.archives.map((path) => basename(path))).toEqual(seen.map((path) => basename(path)));
      const files = readdirSync(archiveDir).filter((name) => name !== ARCHIVE_LOCK_FILE).sort();
      expect(files).toHaveLength(3);
      for (const name of files) {
        expect(bytes(name)).not.toContain('Alice Liddell');
        expect(bytes(name)).not.toContain('"alice"');
        expect((await cli(['verify', '--file', join(archiveDir, name)])).out).toMatch(/^default: valid, /m);
      }
      await racing.dataSource.query('PRAGMA wal_checkpoint(TRUNCATE)');
      const whole = await cli(['verify', '--database', racing.file, '--archives', archiveDir]);
      expect(whole.out).toMatch(/^default: valid, .*from the genesis, through 3 archives/m);
    } finally {
      await racing.close();
    }
  });
});

describe('archive rewrites by two processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-archive-lock-'));
  const archiveDir = join(dir, 'archives');
  let app: TestApp;
  /** The server's warnings, as they come. */
  let onWarning: (message: string) => void = () => undefined;
  const quiet = () => undefined;
  const logger = { debug: quiet, info: quiet, error: quiet, warn: (...args: unknown[]) => onWarning(String(args.at(-1))) };
  beforeAll(async () => {
    app = await startTestApp({ retention: { days: 30, archiveDir, archiveEntries: 40 }, logger });
    const named = (i: number) => (i % 10 === 0 ? ['alice', 'Alice Liddell'] : i % 10 === 5 ? ['bob', 'Bob Dylan'] : [`u${i}`, `Author ${i}`]);
    seedBulk(app.file, 100, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000, author_id: named(i)[0], author_name: named(i)[1] }));
    const [purged] = await app.server.purgeExpired();
    expect(purged!.archives).toHaveLength(3);
  });
  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const bytes = () => readdirSync(archiveDir).filter((name) => name.endsWith('.ndjson.gz')).map((name) => gunzipSync(readFileSync(join(archiveDir, name))).toString('utf8')).join('\n');

  /** `auditql erase` in a process of its own; `waiting` resolves when it says it waits for the folder's lock. */
  function eraseInChild(author: string) {
    const child = spawn(process.execPath, ['dist/cjs/cli.js', 'erase', '--author', author, '--reason', 'request 9', '--no-vacuum'], {
      env: { ...process.env, DATABASE_URL: `sqlite:${app.file}`, RETENTION_ARCHIVE_DIR: archiveDir, META_AUDIT: 'off' },
    });
    let out = '';
    const waiting = new Promise<void>((resolve) => child.stderr.on('data', (chunk) => { out += chunk; if (out.includes('waiting for another process')) resolve(); }));
    child.stdout.on('data', (chunk) => (out += chunk));
    const exited = new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
    return { waiting, exited };
  }

  it('an erasure waits while another process holds the folder, then erases in the files as that one left them', async () => {
    // Another process's rewrite, as any tool takes the lock: an exclusive transaction on the folder's lock file.
    const holder = new Database(join(archiveDir, ARCHIVE_LOCK_FILE));
    holder.exec('BEGIN EXCLUSIVE');
    const erasure = eraseInChild('alice');
    await erasure.waiting;
    // It has erased alice in the table and now waits: the archives are as they were.
    expect(bytes()).toContain('Alice Liddell');
    holder.exec('ROLLBACK');
    holder.close();
    const done = await erasure.exited;
    expect(done.out).toMatch(/erased 0 entries of tenant default and 10 archived ones \(3 archive files rewritten\)/);
    expect(done.code).toBe(0);
    expect(bytes()).not.toContain('Alice Liddell');
    expect(bytes()).toContain('Bob Dylan');
  });

  it("the server's erasure waits too, and says so in its log", async () => {
    const holder = new Database(join(archiveDir, ARCHIVE_LOCK_FILE));
    holder.exec('BEGIN EXCLUSIVE');
    const warned = new Promise<string>((resolve) => (onWarning = resolve));
    const erasing = app.gql('mutation { eraseActor(authorId: "u1", reason: "request 11") { erasedArchivedEntries archiveFiles } }');
    expect(await warned).toBe(`erasure: waiting for another process to finish rewriting the archives in ${archiveDir}`);
    expect(bytes()).toContain('Author 1"');
    holder.exec('ROLLBACK');
    holder.close();
    const erased = await erasing;
    expect(erased.errors).toBeUndefined();
    expect(erased.data!.eraseActor).toEqual({ erasedArchivedEntries: 1, archiveFiles: 1 });
    expect(bytes()).not.toContain('Author 1"');
  });

  it('a process killed while holding the lock leaves none behind', async () => {
    const holder = spawn(process.execPath, ['-e', `const D = require('better-sqlite3'); const d = new D(${JSON.stringify(join(archiveDir, ARCHIVE_LOCK_FILE))}); d.exec('BEGIN EXCLUSIVE'); console.log('locked'); setInterval(() => {}, 1000);`]);
    await new Promise<void>((resolve) => holder.stdout.on('data', (chunk) => String(chunk).includes('locked') && resolve()));
    const killed = new Promise((resolve) => holder.on('close', resolve));
    holder.kill('SIGKILL');
    await killed;
    const erased = await app.gql('mutation { eraseActor(authorId: "bob", reason: "request 10") { erasedArchivedEntries archiveFiles } }');
    expect(erased.errors).toBeUndefined();
    expect(erased.data!.eraseActor).toEqual({ erasedArchivedEntries: 10, archiveFiles: 3 });
    expect(bytes()).not.toContain('Bob Dylan');
    await app.dataSource.query('PRAGMA wal_checkpoint(TRUNCATE)');
    const whole = await cli(['verify', '--database', app.file, '--archives', archiveDir]);
    expect(whole.out).toMatch(/^default: valid, .*from the genesis, through 3 archives/m);
  });
});

describe('a purge that reaches an entry edited in place (its hash left as it was)', () => {
  let app: TestApp;
  afterAll(() => app?.close());

  const VERIFY = '{ verifyAuditChain { valid reason firstInvalidSequence anchorSequence } }';
  const edit = (sequence: number) => {
    const db = new Database(app.file);
    db.prepare(`UPDATE audit_log SET action = 'forged' WHERE tenant_id = 'default' AND sequence = ?`).run(sequence);
    db.close();
  };

  it('removes the entries before it, keeps it and everything after it, and says why; the edit is still found', async () => {
    // Without an archive folder, so that the batches themselves must recompute the hashes.
    app = await startTestApp({ retention: { days: 30, maxBatch: 20 } });
    seedBulk(app.file, 100, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000 }));
    edit(50);
    const [result] = await app.server.purgeExpired();
    expect(result).toMatchObject({ count: 49, anchorSequence: 49 });
    expect(result!.error).toMatch(/entry 50 of tenant default: HASH_MISMATCH .*the purge stopped before it/);
    const verified = await app.gql(VERIFY);
    expect(verified.data!.verifyAuditChain).toEqual({ valid: false, reason: 'HASH_MISMATCH', firstInvalidSequence: 50, anchorSequence: 49 });
  });

  it('removes nothing when the first entry past the anchor is the edited one', async () => {
    const [again] = await app.server.purgeExpired();
    expect(again).toMatchObject({ count: 0, anchorSequence: 49 });
    expect(again!.error).toMatch(/entry 50 of tenant default: HASH_MISMATCH .*nothing past the anchor was removed/);
    const verified = await app.gql(VERIFY);
    expect(verified.data!.verifyAuditChain).toMatchObject({ valid: false, reason: 'HASH_MISMATCH', firstInvalidSequence: 50 });
  });
});

describe('merging of the search index during a purge', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-automerge-'));
  const database = join(dir, 'audit.sqlite');
  let app: TestApp | undefined;
  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is off while the purge runs and back after it, and back at the next start after a purge that did not finish', async () => {
    app = await startTestApp({ database, retention: { days: 30, maxBatch: 20 } });
    seedBulk(app.file, 300, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000 }));
    await app.server.indexSearch();
    const config = new Database(database, { readonly: true });
    // FTS5 keeps it in the index's _config table; no row means its default, 4.
    const automerge = () => (config.prepare(`SELECT v FROM audit_log_search_config WHERE k = 'automerge'`).get() as { v: number } | undefined)?.v ?? 4;
    expect(automerge()).toBe(4);
    // A value of the operator's own comes back after the purge.
    const setAutomerge = (value: number) => {
      const writer = new Database(database);
      writer.exec(`INSERT INTO audit_log_search (audit_log_search, rank) VALUES ('automerge', ${value})`);
      writer.close();
    };
    setAutomerge(8);
    const during: number[] = [];
    const [result] = await app.server.purgeExpired({ onProgress: () => during.push(automerge()) });
    expect(result).toMatchObject({ count: 300 });
    expect(during.length).toBeGreaterThan(1);
    expect(new Set(during)).toEqual(new Set([0]));
    expect(automerge()).toBe(8);

    // Found at 0 (another purge, the CLI's, under way): the default comes back when this one ends, not the 0.
    setAutomerge(0);
    const [again] = await app.server.purgeExpired({ now: Date.now() + 400 * DAY });
    expect(again!.count).toBeGreaterThan(0);
    expect(automerge()).toBe(4);

    // A crash in the middle of a purge leaves it at 0: the next start puts it back.
    await app.close();
    setAutomerge(0);
    expect(automerge()).toBe(0);
    app = await startTestApp({ database });
    await app.server.indexSearch();
    expect(automerge()).toBe(4);
    config.close();
  });
});

describe('unfinished archive files of a process that died', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-stale-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('are removed by the next purge and by an erasure, since they hold values no erasure would reach; a running writer keeps its own', async () => {
    const archives = join(dir, 'archives');
    const app = await startTestApp({ database: join(dir, 'audit.sqlite'), retention: { days: 30, archiveDir: archives } });
    try {
      seedBulk(app.file, 50, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000, author_id: 'zed', author_name: 'Zed Secret' }));
      // A pid that runs no process: above the kernel's limit.
      const dead = 4_194_400;
      mkdirSync(archives, { recursive: true });
      const stale = [`.auditql-default-000000000001-000000000000.ndjson.gz.${dead}.1700000000000.partial`, `auditql-default-000000000001-000000000020.ndjson.gz.${dead}.1700000000000.erasing`];
      const live = `.auditql-default-000000000001-000000000000.ndjson.gz.${process.pid}.1700000000000.partial`;
      for (const name of [...stale, live]) writeFileSync(join(archives, name), 'Zed Secret');
      await app.server.purgeExpired();
      const left = readdirSync(archives);
      expect(left).not.toContain(stale[0]);
      expect(left).not.toContain(stale[1]);
      expect(left).toContain(live);
      writeFileSync(join(archives, stale[0]!), 'Zed Secret');
      const erased = await app.gql('mutation { eraseActor(authorId: "zed", reason: "request 7") { erasedEntries } }');
      expect(erased.errors).toBeUndefined();
      expect(readdirSync(archives)).not.toContain(stale[0]);
    } finally {
      await app.close();
    }
  });
});
