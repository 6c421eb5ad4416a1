/**
 * `auditql verify` against hostile or wrong input, with the real CLI on real SQLite files: live rows an
 * interrupted purge left in an archive too, archives that overlap, checkpoint files with a bad signature,
 * key files without a PEM block, tenants an export lacks, and files that are no export at all.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERATED_KEY_FILE } from '../src/services/checkpoint-key.js';
import { entryHash } from '../src/shared/chain/canonical.js';
import { keyIdOf, publicKeyPem } from '../src/shared/chain/checkpoint.js';
import { CHAIN_COLUMNS, chainRowFromDb, type RawChainRow } from '../src/shared/chain/rows.js';
import { runCli as cli } from './helpers/cli.js';
import { seedBulk } from './helpers/seed.js';
import { startTestApp } from './helpers/test-app.js';

const DAY = 86_400_000;
/** acme's expired entries: the archive holds 1..241, the interrupted purge removed 1..40. */
const ARCHIVED = 241;
const INTERRUPTED_AT = 40;
const FRESH = 3;

const dir = mkdtempSync(join(tmpdir(), 'auditql-verify-hostile-'));
const file = (name: string) => join(dir, name);
const sqlite = (name: string) => ({ DATABASE_URL: `sqlite:${file(name)}` });
/** Every file below lives in `dir`, beside the checkpoint key the first start generated there. */
let interrupted: string;
let firstArchive: string;
let secondArchive: string;
let acmeExport: string;
let goodCheckpoints: string;
let badCheckpoints: string;

async function retention(database: string, args: string[]): Promise<void> {
  const run = await cli(['retention', '--tenant', 'acme', ...args], sqlite(database));
  expect(run.code, run.out).toBe(0);
}

const archiveIn = (folder: string) => join(folder, readdirSync(folder).find((name) => name.endsWith('.ndjson.gz'))!);

/** A copy of `source` with its triggers dropped (as an attacker with the file would) and `tamper` run on it. */
function tampered(source: string, name: string, tamper: (db: Database.Database) => void): string {
  copyFileSync(file(source), file(name));
  const db = new Database(file(name));
  for (const { name: trigger } of db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger'`).all() as Array<{ name: string }>) db.exec(`DROP TRIGGER "${trigger}"`);
  tamper(db);
  db.close();
  return file(name);
}

/** Edits entry `sequence` in the gzipped archive at `path` (its hash left as it was). */
function editArchive(path: string, sequence: number, to: string): string {
  const lines = gunzipSync(readFileSync(path)).toString('utf8').trimEnd().split('\n');
  const edited = lines.map((line) => {
    const value = JSON.parse(line) as Record<string, unknown>;
    return value.sequence === sequence && value.checkpoint === undefined ? JSON.stringify({ ...value, action: 'delete' }) : line;
  });
  expect(edited).not.toEqual(lines);
  writeFileSync(to, gzipSync(`${edited.join('\n')}\n`));
  return to;
}

/** A checkpoint file as GET /checkpoints serves it, with acme's checkpoints from `database`. */
function checkpointFile(database: string, name: string, spoil: boolean): string {
  const key = createPublicKey(createPrivateKey(readFileSync(file(GENERATED_KEY_FILE), 'utf8')));
  const db = new Database(file(database), { readonly: true });
  const rows = db.prepare(`SELECT tenant_id AS tenant, sequence, hash, created_at AS createdAt, key_id AS keyId, jws FROM audit_checkpoint WHERE tenant_id = 'acme'`).all() as Array<{ jws: string }>;
  db.close();
  expect(rows.length).toBeGreaterThan(0);
  // The signature's last bytes changed: it no longer verifies.
  const checkpoints = rows.map((row) => (spoil ? { ...row, jws: `${row.jws.slice(0, -8)}AAAAAAAA` } : row));
  writeFileSync(file(name), JSON.stringify({ format: 'auditql-checkpoints', version: 1, publicKey: { keyId: keyIdOf(key), pem: publicKeyPem(key) }, checkpoints }));
  return file(name);
}

beforeAll(async () => {
  const app = await startTestApp({ database: file('base.sqlite') });
  await app.close();
  // Expired acme entries one a day, 300 to 60 days old (an hour younger, so the cut-offs below fall between two), then fresh ones.
  seedBulk(file('base.sqlite'), ARCHIVED, (i) => ({ tenant_id: 'acme', created_at: Date.now() - (300 - i) * DAY + 3_600_000 }));
  seedBulk(file('base.sqlite'), FRESH, () => ({ tenant_id: 'acme', created_at: Date.now() }));

  // A purge that archived 1..241 and was killed after removing 1..40: the archive of one run, the live table of another.
  copyFileSync(file('base.sqlite'), file('archived.sqlite'));
  await retention('archived.sqlite', ['--days', '59', '--archive-dir', file('archives-1')]);
  firstArchive = archiveIn(file('archives-1'));
  expect(firstArchive).toMatch(/auditql-acme-0+1-0+241\.ndjson\.gz$/);
  copyFileSync(file('base.sqlite'), file('interrupted.sqlite'));
  await retention('interrupted.sqlite', ['--days', '260']);
  interrupted = 'interrupted.sqlite';
  // The next run archives 41..241 again and finishes: two archives that overlap.
  copyFileSync(file('interrupted.sqlite'), file('rerun.sqlite'));
  await retention('rerun.sqlite', ['--days', '59', '--archive-dir', file('archives-2')]);
  secondArchive = archiveIn(file('archives-2'));
  expect(secondArchive).toMatch(/auditql-acme-0+41-0+241\.ndjson\.gz$/);

  copyFileSync(file('interrupted.sqlite'), file('exported.sqlite'));
  acmeExport = file('acme.ndjson');
  const exported = await cli(['export', '--tenant', 'acme', '--out', acmeExport], sqlite('exported.sqlite'));
  expect(exported.code, exported.out).toBe(0);
  goodCheckpoints = checkpointFile('interrupted.sqlite', 'checkpoints.json', false);
  badCheckpoints = checkpointFile('interrupted.sqlite', 'checkpoints-bad.json', true);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('verify --archives after an interrupted purge (live rows the archive holds too)', () => {
  it('verifies the untouched overlap as one chain, each entry counted once', async () => {
    const run = await cli(['verify', '--archives', file('archives-1'), '--tenant', 'acme'], sqlite(interrupted));
    // 241 archived (40 of them only there), 3 fresh, the purge's own entry.
    expect(run.out).toMatch(new RegExp(`^acme: valid, ${ARCHIVED + FRESH + 1} entries, from the genesis, through 1 archive`, 'm'));
    expect(run.code).toBe(0);
  });

  it('finds a live row edited where the archive holds it too', async () => {
    const edited = tampered(interrupted, 'edited-100.sqlite', (db) => db.exec(`UPDATE audit_log SET action = 'delete' WHERE tenant_id = 'acme' AND sequence = 100`));
    const plain = await cli(['verify', '--tenant', 'acme'], { DATABASE_URL: `sqlite:${edited}` });
    expect(plain.out).toMatch(/acme: BROKEN at sequence 100: HASH_MISMATCH/);
    const through = await cli(['verify', '--archives', file('archives-1'), '--tenant', 'acme'], { DATABASE_URL: `sqlite:${edited}` });
    expect(through.out).toMatch(/acme: BROKEN at sequence 100: HASH_MISMATCH/);
    expect(through.code).toBe(1);
  });

  it('finds the overlap rewritten with every later hash recomputed, which plain verify cannot', async () => {
    const rewritten = tampered(interrupted, 'rewritten.sqlite', (db) => {
      db.exec(`UPDATE audit_log SET action = 'delete' WHERE tenant_id = 'acme' AND sequence = 100`);
      const rows = db.prepare(`SELECT "id", ${CHAIN_COLUMNS} FROM audit_log WHERE tenant_id = 'acme' AND sequence >= 99 ORDER BY sequence`).all() as Array<RawChainRow & { id: number }>;
      let previous = rows[0]!.hash!;
      for (const raw of rows.slice(1)) {
        const hash = entryHash({ ...chainRowFromDb(raw), previousHash: previous }, previous);
        db.prepare('UPDATE audit_log SET previous_hash = ?, hash = ? WHERE id = ?').run(previous, hash, raw.id);
        previous = hash;
      }
      db.prepare(`UPDATE audit_chain_head SET hash = ? WHERE tenant_id = 'acme'`).run(previous);
    });
    const env = { DATABASE_URL: `sqlite:${rewritten}` };
    expect((await cli(['verify', '--tenant', 'acme'], env)).code).toBe(0);
    const through = await cli(['verify', '--archives', file('archives-1'), '--tenant', 'acme'], env);
    expect(through.out).toMatch(new RegExp(`acme: BROKEN at sequence ${ARCHIVED}: CHECKPOINT_MISMATCH \\(entry ${ARCHIVED} in the live table is not the one the archives hold`));
    expect(through.code).toBe(1);
  });
});

describe('verify --archives with two archives that overlap (a purge run again after an interruption)', () => {
  let both: string;
  beforeAll(() => {
    both = file('archives-both');
    mkdirSync(both);
    copyFileSync(firstArchive, join(both, 'auditql-acme-000000000001-000000000241.ndjson.gz'));
    copyFileSync(secondArchive, join(both, 'auditql-acme-000000000041-000000000241.ndjson.gz'));
  });

  it('verifies them as one chain', async () => {
    const run = await cli(['verify', '--archives', both, '--tenant', 'acme'], sqlite('rerun.sqlite'));
    expect(run.out).toMatch(/^acme: valid, \d+ entries, from the genesis, through 2 archives/m);
    expect(run.code).toBe(0);
  });

  it('recomputes the lines of the second archive that the first holds too', async () => {
    editArchive(join(both, 'auditql-acme-000000000041-000000000241.ndjson.gz'), 100, join(both, 'auditql-acme-000000000041-000000000241.ndjson.gz'));
    const run = await cli(['verify', '--archives', both, '--tenant', 'acme'], sqlite('rerun.sqlite'));
    expect(run.out).toMatch(/acme: BROKEN at sequence 100: HASH_MISMATCH/);
    expect(run.code).toBe(1);
  });
});

describe('verify --file with --checkpoints', () => {
  it('holds an export against the checkpoints that verify', async () => {
    const run = await cli(['verify', '--file', acmeExport, '--checkpoints', goodCheckpoints]);
    expect(run.out).toMatch(new RegExp(`^acme: valid, \\d+ entries, from anchor ${INTERRUPTED_AT} \\(signed checkpoint\\)`, 'm'));
    expect(run.code).toBe(0);
  });

  it('fails with CHECKPOINT_SIGNATURE when a checkpoint does not verify, as the database mode does', async () => {
    const database = await cli(['verify', '--checkpoints', badCheckpoints, '--tenant', 'acme'], sqlite(interrupted));
    expect(database.out).toMatch(/acme: BROKEN at sequence \d+: CHECKPOINT_SIGNATURE/);
    const exported = await cli(['verify', '--file', acmeExport, '--checkpoints', badCheckpoints]);
    expect(exported.out).toMatch(/acme: BROKEN at sequence \d+: CHECKPOINT_SIGNATURE/);
    expect(exported.code).toBe(1);
    const archive = await cli(['verify', '--file', firstArchive, '--checkpoints', badCheckpoints]);
    expect(archive.out).toMatch(/acme: BROKEN at sequence \d+: CHECKPOINT_SIGNATURE/);
    expect(archive.code).toBe(1);
  });
});

describe('verify --file when what the operator named is not in the file', () => {
  it('fails a tenant named with --tenant that the export does not hold', async () => {
    const run = await cli(['verify', '--file', acmeExport, '--tenant', 'ghost']);
    expect(run.out).toMatch(/^ghost: BROKEN at sequence 1: HEAD_MISMATCH \(tenant ghost has no entries in /m);
    expect(run.out).not.toMatch(/no entries\n/);
    expect(run.code).toBe(1);
    const archive = await cli(['verify', '--file', firstArchive, '--tenant', 'ghost']);
    expect(archive.out).toMatch(/^ghost: BROKEN at sequence 1: HEAD_MISMATCH/m);
    expect(archive.code).toBe(1);
  });

  it('fails a tenant the checkpoint file names that the export does not hold', async () => {
    writeFileSync(file('empty.ndjson'), '');
    const run = await cli(['verify', '--file', file('empty.ndjson'), '--checkpoints', goodCheckpoints]);
    expect(run.out).toMatch(new RegExp(`^acme: BROKEN at sequence ${INTERRUPTED_AT}: CHECKPOINT_MISMATCH`, 'm'));
    expect(run.code).toBe(1);
  });

  it('still says "no entries" (exit 0) for an empty file with nothing named', async () => {
    const run = await cli(['verify', '--file', file('empty.ndjson')]);
    expect(run.out).toBe('no entries\n');
    expect(run.code).toBe(0);
  });
});

describe('verify --public-key', () => {
  const publicKey = () => createPublicKey(createPrivateKey(readFileSync(file(GENERATED_KEY_FILE), 'utf8')));

  it('takes a JWK, alone or as GET /.well-known/auditql/checkpoint-key serves it, and uses that key', async () => {
    const key = publicKey();
    const jwk = { ...key.export({ format: 'jwk' }), kid: keyIdOf(key), alg: 'EdDSA', use: 'sig' };
    writeFileSync(file('key.jwk'), JSON.stringify(jwk));
    // The endpoint's shape without its PEM: the JWK alone must do.
    writeFileSync(file('well-known.json'), JSON.stringify({ keyId: keyIdOf(key), algorithm: 'Ed25519', jwk, previous: [] }));
    for (const keyFile of [file('key.jwk'), file('well-known.json')]) {
      const run = await cli(['verify', '--file', firstArchive, '--public-key', keyFile]);
      expect(run.out).toContain(`archive checkpoints checked with key ${keyIdOf(key)}\n`);
      expect(run.out).toMatch(/^acme: valid, 241 entries/m);
      expect(run.code).toBe(0);
    }
    // Another key as a JWK: the archive must fail with it, not pass with the key the archive names.
    const other = generateKeyPairSync('ed25519').publicKey;
    writeFileSync(file('other.jwk'), JSON.stringify(other.export({ format: 'jwk' })));
    const wrong = await cli(['verify', '--file', firstArchive, '--public-key', file('other.jwk')]);
    expect(wrong.out).toMatch(/acme: BROKEN at sequence \d+: CHECKPOINT_SIGNATURE/);
    expect(wrong.code).toBe(1);
  });

  it('refuses a file without an Ed25519 key in one line, exit 2, instead of falling back to the key beside the database', async () => {
    writeFileSync(file('nokey.json'), JSON.stringify({ keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB' }] }));
    for (const args of [['--database', file(interrupted)], ['--file', firstArchive]]) {
      const run = await cli(['verify', ...args, '--public-key', file('nokey.json')]);
      expect(run.out).toBe(`auditql verify: no Ed25519 public key in ${file('nokey.json')}\n`);
      expect(run.code).toBe(2);
    }
  });
});

describe('verify with input that is no export at all', () => {
  /** The error is the last line, one line, no stack; only what was printed before it may come first (an archive's key). */
  const oneLineError = (out: string, before = 0) => {
    const lines = out.trimEnd().split('\n');
    expect(lines, out).toHaveLength(before + 1);
    expect(lines.at(-1)).toMatch(/^auditql verify: /);
    expect(out).not.toMatch(/\n\s+at /);
  };

  it('a missing --file', async () => {
    const run = await cli(['verify', '--file', file('missing.ndjson.gz')]);
    oneLineError(run.out);
    expect(run.out).toContain('missing.ndjson.gz: no such file');
    expect(run.code).toBe(2);
    expect((await cli(['verify', '--file', file('missing.ndjson')])).code).toBe(2);
  });

  it('a corrupted gzip, and one cut short', async () => {
    writeFileSync(file('garbage.ndjson.gz'), 'this was never gzip\n');
    const garbage = await cli(['verify', '--file', file('garbage.ndjson.gz')]);
    oneLineError(garbage.out);
    expect(garbage.out).toContain('is not a readable gzip file');
    expect(garbage.code).toBe(2);
    const bytes = readFileSync(firstArchive);
    writeFileSync(file('cut.ndjson.gz'), bytes.subarray(0, bytes.length - 200));
    const cut = await cli(['verify', '--file', file('cut.ndjson.gz')]);
    // Its header was read (the key line is printed) before the cut was reached.
    oneLineError(cut.out, 1);
    expect(cut.out).toContain('is not a readable gzip file (unexpected end of file)');
    expect(cut.code).toBe(2);
  });

  it('a JSON or CSV export', async () => {
    for (const format of ['json', 'csv']) {
      const out = file(`acme.${format}`);
      copyFileSync(file(interrupted), file(`export-${format}.sqlite`));
      expect((await cli(['export', '--tenant', 'acme', '--format', format, '--out', out], sqlite(`export-${format}.sqlite`))).code).toBe(0);
      const run = await cli(['verify', '--file', out]);
      oneLineError(run.out);
      expect(run.out).toContain('line 1 is not a JSON object');
      expect(run.code).toBe(2);
    }
  });

  it('a missing database, archive folder or checkpoint file', async () => {
    const database = await cli(['verify', '--database', file('no-such-folder/audit.sqlite')]);
    oneLineError(database.out);
    expect(database.code).toBe(2);
    const folder = await cli(['verify', '--archives', file('no-such-folder')], sqlite(interrupted));
    oneLineError(folder.out);
    expect(folder.code).toBe(2);
    const checkpoints = await cli(['verify', '--checkpoints', acmeExport], sqlite(interrupted));
    oneLineError(checkpoints.out);
    expect(checkpoints.code).toBe(2);
  });
});
