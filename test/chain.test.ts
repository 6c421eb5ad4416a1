import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { compactVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scheduleCheckpoints } from '../src/services/checkpoints.js';
import { entryHash } from '../src/shared/chain/canonical.js';
import { CHAIN_COLUMNS, chainRowFromDb, type RawChainRow } from '../src/shared/chain/rows.js';
import { silentLogger } from '../src/shared/logger.js';
import { GENERATED_KEY_FILE } from '../src/services/checkpoint-key.js';
import { collect, deferred, LOG_EVENT, logEvents, startTestApp, untilSubscribed, type TestApp } from './helpers/test-app.js';
import { runCli as cli } from './helpers/cli.js';

let app: TestApp;
const ENTRIES = 12;

beforeAll(async () => {
  app = await startTestApp();
  await logEvents(
    app,
    Array.from({ length: ENTRIES }, (_, i) => ({
      resource: 'invoices', action: i % 2 ? 'update' : 'create', resourceId: String(i), name: `entry ${i}`,
      author: undefined, data: { total: i * 10, customer: { email: `c${i}@example.com` } }, meta: { requestId: `r${i}` },
    })),
  );
});
afterAll(() => app.close());


describe('the chain through the API', () => {
  it('gives every entry its sequence, hash and previous hash, in commit order', async () => {
    const result = await app.gql('{ auditLogs(orderBy: OLDEST_FIRST, first: 500) { edges { node { id sequence hash previousHash hashVersion } } } }');
    const nodes = result.data!.auditLogs.edges.map((e: { node: Record<string, unknown> }) => e.node);
    expect(nodes.map((n: { sequence: number }) => n.sequence)).toEqual(Array.from({ length: nodes.length }, (_, i) => i + 1));
    expect(nodes[0].previousHash).toBe('0'.repeat(64));
    for (let i = 1; i < nodes.length; i++) expect(nodes[i].previousHash).toBe(nodes[i - 1].hash);
    // Version 2 for entries with personal values inside their JSON (README, "The canonical form"), 1 for the rest.
    const stored = (await app.dataSource.query('SELECT "id", "personal_paths" FROM "audit_log"')) as Array<{ id: number; personal_paths: string | null }>;
    const inJson = new Map(stored.map((row) => [String(row.id), ((JSON.parse(row.personal_paths ?? '[]') as string[]).some((p) => p.split('/').length > 2))]));
    for (const n of nodes) {
      expect(n.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(n.hashVersion).toBe(inJson.get(n.id) ? 2 : 1);
    }
  });

  it('verifies, whole and in ranges, and keeps verifying across a rename (the label is outside the hash)', async () => {
    const before = await app.gql('{ verifyAuditChain { valid checked firstInvalidSequence reason headSequence headHash anchorSequence } }');
    expect(before.data!.verifyAuditChain).toMatchObject({ valid: true, checked: ENTRIES, firstInvalidSequence: null, reason: null, headSequence: ENTRIES, anchorSequence: 0 });
    const renamed = await app.gql('mutation { renameLog(id: "3", name: "relabelled") { name sequence } }');
    expect(renamed.data!.renameLog).toEqual({ name: 'relabelled', sequence: 3 });
    const after = await app.gql('{ verifyAuditChain { valid checked headSequence } }');
    // The rename is an entry of its own.
    expect(after.data!.verifyAuditChain).toEqual({ valid: true, checked: ENTRIES + 1, headSequence: ENTRIES + 1 });
    const range = await app.gql('{ verifyAuditChain(fromSequence: 4, toSequence: 6) { valid checked headSequence } }');
    expect(range.data!.verifyAuditChain).toEqual({ valid: true, checked: 3, headSequence: 6 });
    const bad = await app.gql('{ verifyAuditChain(fromSequence: 5, toSequence: 2) { valid } }');
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'toSequence' });
    // Nothing past the head to vouch for: an error, not "valid".
    const past = await app.gql('{ verifyAuditChain(fromSequence: 1000000) { valid } }');
    expect(past.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'fromSequence' });
    expect(past.errors?.[0]?.message).toMatch(/past the head of the chain/);
  });

  it('delivers sequence and hash in the live stream', async () => {
    const client = app.wsClient();
    const subscribers = app.server.pubsub.subscriberCount;
    const stream = collect(client, 'subscription { auditLogAdded(filter: { resource: ["live"] }) { sequence hash previousHash } }', {}, 1);
    await untilSubscribed(app.server.pubsub, subscribers + 1);
    const written = await app.gql(LOG_EVENT, { input: { resource: 'live', action: 'ping' } });
    const [message] = await stream.reached;
    const read = await app.gql(`query { auditLog(id: "${written.data!.logEvent.id}") { sequence hash previousHash } }`);
    expect(message!.data!.auditLogAdded).toEqual(read.data!.auditLog);
    stream.unsubscribe();
  });

  it('finds an entry edited in the database at its sequence', async () => {
    const file = join(app.dir, 'edited.sqlite');
    const other = await startTestApp({ database: file });
    try {
      await logEvents(other, [{ resource: 'a', action: 'x' }, { resource: 'b', action: 'y' }, { resource: 'c', action: 'z' }]);
      await other.dataSource.query(`UPDATE audit_log SET resource = 'forged' WHERE sequence = 2`);
      const result = await other.gql('{ verifyAuditChain { valid firstInvalidSequence reason checked } }');
      expect(result.data!.verifyAuditChain).toEqual({ valid: false, firstInvalidSequence: 2, reason: 'HASH_MISMATCH', checked: 2 });
    } finally {
      await other.close();
    }
  });
});

describe('signed checkpoints', () => {
  it('signs the head with Ed25519, lists it, serves the public key and the file to keep', async () => {
    const created = await app.gql('mutation { createCheckpoint { id tenant sequence hash createdAt keyId jws } }');
    const checkpoint = created.data!.createCheckpoint;
    const head = await app.gql('{ verifyAuditChain { headSequence headHash } }');
    expect(checkpoint).toMatchObject({ tenant: 'default', sequence: head.data!.verifyAuditChain.headSequence, hash: head.data!.verifyAuditChain.headHash });

    const wellKnown = await fetch(app.url.replace('/graphql', '/.well-known/auditql/checkpoint-key'));
    expect(wellKnown.status).toBe(200);
    const key = (await wellKnown.json()) as { keyId: string; pem: string; algorithm: string };
    expect(key).toMatchObject({ keyId: checkpoint.keyId, algorithm: 'Ed25519' });
    const { payload, protectedHeader } = await compactVerify(checkpoint.jws, createPublicKey(key.pem));
    expect(protectedHeader).toMatchObject({ alg: 'EdDSA', kid: key.keyId });
    expect(JSON.parse(new TextDecoder().decode(payload))).toEqual({ createdAt: Date.parse(checkpoint.createdAt), hash: checkpoint.hash, sequence: checkpoint.sequence, tenant: 'default' });
    expect((await app.gql('{ checkpointPublicKey { keyId pem } }')).data!.checkpointPublicKey).toEqual({ keyId: key.keyId, pem: key.pem });

    const listed = await app.gql('{ auditCheckpoints(first: 5) { edges { node { id sequence jws } } pageInfo { hasNextPage } } }');
    expect(listed.data!.auditCheckpoints.edges[0].node).toEqual({ id: checkpoint.id, sequence: checkpoint.sequence, jws: checkpoint.jws });

    const download = await fetch(app.url.replace('/graphql', '/checkpoints'), { headers: { authorization: `Bearer ${app.adminKey}` } });
    expect(download.headers.get('content-disposition')).toMatch(/^attachment; filename="auditql-checkpoints-default-\d{4}-\d\d-\d\d\.json"$/);
    const file = await download.json();
    expect(file).toMatchObject({ format: 'auditql-checkpoints', version: 1, publicKey: { keyId: key.keyId }, checkpoints: [{ sequence: checkpoint.sequence, jws: checkpoint.jws }] });
    expect((await fetch(app.url.replace('/graphql', '/checkpoints'))).status).toBe(401);
  });

  it('keeps the key it generated in the data directory, readable by its owner only', () => {
    const file = join(app.dir, GENERATED_KEY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toContain('BEGIN PRIVATE KEY');
  });

  it('are written on a schedule for every tenant whose chain moved', async () => {
    const written = deferred<{ sequence: number; tenant: string }>();
    await app.gql(LOG_EVENT, { input: { resource: 'scheduled', action: 'x' } });
    const stop = scheduleCheckpoints(app.dataSource, app.server.checkpointKey, 20, silentLogger(), (c) => written.resolve(c));
    try {
      const checkpoint = await written.promise;
      const head = await app.gql('{ verifyAuditChain { headSequence } }');
      expect(checkpoint).toMatchObject({ tenant: 'default', sequence: head.data!.verifyAuditChain.headSequence });
    } finally {
      stop();
    }
  });
});

/** Drops every trigger, as an attacker with the file would, and runs `tamper` on the copy. */
function tampered(name: string, tamper: (db: Database.Database) => void): string {
  const file = join(app.dir, `${name}.sqlite`);
  copyFileSync(pristine, file);
  const db = new Database(file);
  for (const { name: trigger } of db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger'`).all() as Array<{ name: string }>) db.exec(`DROP TRIGGER "${trigger}"`);
  tamper(db);
  db.close();
  return file;
}

const rowsOf = (db: Database.Database) => (db.prepare(`SELECT "id", ${CHAIN_COLUMNS} FROM audit_log WHERE tenant_id = 'default' ORDER BY sequence`).all() as Array<RawChainRow & { id: number }>);

/** Recomputes every hash from `from` on, as an attacker who knows the algorithm would after an edit. */
function rehashFrom(db: Database.Database, from: number): void {
  const rows = rowsOf(db);
  let previous = rows.find((r) => Number(r.sequence) === from - 1)?.hash ?? '0'.repeat(64);
  for (const raw of rows.filter((r) => Number(r.sequence) >= from)) {
    const row = chainRowFromDb(raw);
    const hash = entryHash({ ...row, previousHash: previous }, previous);
    db.prepare('UPDATE audit_log SET previous_hash = ?, hash = ? WHERE id = ?').run(previous, hash, raw.id);
    previous = hash;
  }
  db.prepare(`UPDATE audit_chain_head SET sequence = ?, hash = ? WHERE tenant_id = 'default'`).run(rows.length, previous);
}

let pristine: string;
let checkpointFile: string;
let last: number;

/** Hostile edits of the file, where each must be found, and why. */
const TAMPERING: Array<[string, (db: Database.Database) => void, number | (() => number), string]> = [
  ['an edited field', (db: Database.Database) => db.exec(`UPDATE audit_log SET data = '{"customer":{"email":"c4@example.com"},"total":9999}' WHERE sequence = 5`), 5, 'HASH_MISMATCH'],
  ['an edited personal value', (db: Database.Database) => db.exec(`UPDATE audit_log SET ip = '10.6.6.6' WHERE sequence = 7`), 7, 'HASH_MISMATCH'],
  ['a deleted row', (db: Database.Database) => db.exec(`DELETE FROM audit_log WHERE sequence = 5`), 5, 'SEQUENCE_GAP'],
  [
    'two rows swapped',
    (db: Database.Database) => {
      const facts = 'resource, resource_id, action, data, meta, created_at, transaction_id, salt, personal_paths, ip, user_agent, author_id, author_name, author_type';
      db.exec(`CREATE TEMP TABLE s AS SELECT sequence, ${facts} FROM audit_log WHERE sequence IN (5, 6)`);
      const set = facts.split(', ').map((c) => `${c} = (SELECT ${c} FROM s WHERE s.sequence = 11 - audit_log.sequence)`).join(', ');
      db.exec(`UPDATE audit_log SET ${set} WHERE sequence IN (5, 6)`);
    },
    5,
    'HASH_MISMATCH',
  ],
  [
    'a forged row inserted with a duplicate sequence',
    (db: Database.Database) => {
      db.exec('DROP INDEX idx_audit_log_tenant_sequence');
      db.exec(`INSERT INTO audit_log (tenant_id, resource, action, created_at, sequence, hash, previous_hash, hash_version) SELECT tenant_id, 'forged', action, created_at, sequence, hash, previous_hash, hash_version FROM audit_log WHERE sequence = 4`);
    },
    4,
    'DUPLICATE_SEQUENCE',
  ],
  [
    'a forged row appended with a correctly computed hash',
    (db: Database.Database) => {
      db.exec(`INSERT INTO audit_log (tenant_id, resource, action, created_at, sequence, hash, previous_hash, hash_version) VALUES ('default', 'forged', 'create', 1, ${last + 1}, 'x', 'x', 1)`);
      rehashFrom(db, last + 1);
      // … but the recorded head is left behind (rehashFrom moved it; put it back).
      const previous = db.prepare(`SELECT hash FROM audit_log WHERE sequence = ${last}`).get() as { hash: string };
      db.prepare(`UPDATE audit_chain_head SET sequence = ?, hash = ?`).run(last, previous.hash);
    },
    () => last + 1,
    'HEAD_MISMATCH',
  ],
  ['a truncated tail', (db: Database.Database) => db.exec(`DELETE FROM audit_log WHERE sequence > 8`), 9, 'HEAD_MISMATCH'],
];

describe('an attacker with the SQLite file (triggers dropped), against `auditql verify`', () => {
  beforeAll(async () => {
    await app.gql('mutation { createCheckpoint { sequence } }');
    const download = await fetch(app.url.replace('/graphql', '/checkpoints'), { headers: { authorization: `Bearer ${app.adminKey}` } });
    checkpointFile = join(app.dir, 'checkpoints.json');
    writeFileSync(checkpointFile, await download.text());
    await app.dataSource.query('PRAGMA wal_checkpoint(TRUNCATE)');
    pristine = join(app.dir, 'pristine.sqlite');
    copyFileSync(app.file, pristine);
    last = Number((new Database(pristine, { readonly: true }).prepare(`SELECT MAX(sequence) AS n FROM audit_log`).get() as { n: number }).n);
  });

  it('passes the untouched file, with and without checkpoints, one line per tenant', async () => {
    const plain = await cli(['verify', '--database', pristine]);
    expect(plain).toMatchObject({ code: 0 });
    expect(plain.out).toMatch(new RegExp(`^default: valid, ${last} entries, head ${last} [0-9a-f]{16}…, 0 checkpoints held$`, 'm'));
    const held = await cli(['verify', '--database', pristine, '--checkpoints', checkpointFile]);
    expect(held.code).toBe(0);
    expect(held.out).toMatch(/^default: valid, .*, [1-9]\d* checkpoints held$/m);
  });

  it.each(TAMPERING)('detects %s at the right sequence', async (name, tamper, sequence, reason) => {
    const file = tampered(name.replace(/\W+/g, '-'), tamper);
    const at = typeof sequence === 'function' ? sequence() : sequence;
    const result = await cli(['verify', '--database', file]);
    expect(result.code).toBe(1);
    expect(result.out).toMatch(new RegExp(`^default: BROKEN at sequence ${at}: ${reason} \\(`, 'm'));
  });

  it.each(TAMPERING)('detects %s at the right sequence through verifyAuditChain, on a server started on the file', async (name, tamper, sequence, reason) => {
    const file = tampered(`server-${name.replace(/\W+/g, '-')}`, tamper);
    const at = typeof sequence === 'function' ? sequence() : sequence;
    const server = await startTestApp({ database: file });
    try {
      const result = await server.gql('{ verifyAuditChain { valid reason firstInvalidSequence } }');
      expect(result.data!.verifyAuditChain).toEqual({ valid: false, reason, firstInvalidSequence: at });
    } finally {
      await server.close();
    }
  });

  it('detects a rewrite that recomputed every later hash only with the checkpoints kept elsewhere', async () => {
    const file = tampered('rewrite', (db) => {
      db.exec(`UPDATE audit_log SET action = 'forged' WHERE sequence = 5`);
      rehashFrom(db, 5);
    });
    expect((await cli(['verify', '--database', file])).code).toBe(0);
    const held = await cli(['verify', '--database', file, '--checkpoints', checkpointFile]);
    expect(held.code).toBe(1);
    const first = JSON.parse(readFileSync(checkpointFile, 'utf8')).checkpoints[0].sequence as number;
    expect(held.out).toMatch(new RegExp(`^default: BROKEN at sequence ${first}: CHECKPOINT_MISMATCH`, 'm'));
  });

  it('detects a tenant deleted whole (its rows and its head) with the checkpoints, and a named tenant that has no chain', async () => {
    const file = tampered('tenant-deleted', (db) => {
      db.exec(`DELETE FROM audit_log WHERE tenant_id = 'default'`);
      db.exec(`DELETE FROM audit_chain_head WHERE tenant_id = 'default'`);
    });
    const held = await cli(['verify', '--database', file, '--checkpoints', checkpointFile]);
    expect(held.code).toBe(1);
    expect(held.out).toMatch(/^default: BROKEN at sequence \d+: CHECKPOINT_MISMATCH/m);
    const named = await cli(['verify', '--database', pristine, '--tenant', 'defualt']);
    expect(named.code).toBe(1);
    expect(named.out).toMatch(/^defualt: BROKEN at sequence 1: HEAD_MISMATCH \(tenant defualt has no chain in this database/m);
    const both = await cli(['verify', '--database', pristine, '--tenant', 'default']);
    expect(both.code).toBe(0);
    expect(both.out).toMatch(/^default: valid, /m);
  });

  it('refuses checkpoints whose signature does not verify', async () => {
    const file = JSON.parse(readFileSync(checkpointFile, 'utf8'));
    const [header, payload, signature] = file.checkpoints[0].jws.split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sequence: 1 })).toString('base64url');
    file.checkpoints[0].jws = [header, forgedPayload, signature].join('.');
    const forged = join(app.dir, 'forged-checkpoints.json');
    writeFileSync(forged, JSON.stringify(file));
    const result = await cli(['verify', '--database', pristine, '--checkpoints', forged]);
    expect(result.code).toBe(1);
    expect(result.out).toMatch(/^default: BROKEN at sequence \d+: CHECKPOINT_SIGNATURE/m);
  });
});
