import { createReadStream, readFileSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import Database from 'better-sqlite3';
import type { Command } from 'commander';
import { loadConfig, parseDatabaseUrl } from '../config.js';
import { canonicalJson, GENESIS_HASH, type ChainRow } from '../shared/chain/canonical.js';
import { keyIdOf, verifyCheckpoint, type CheckpointFile } from '../shared/chain/checkpoint.js';
import { chainBatches } from '../shared/chain/rows.js';
import { ChainFailure, verifyChain, type ChainVerification, type TrustedCheckpoint } from '../shared/chain/verify.js';
import type { JsonValue } from '../shared/json.js';

export interface TenantVerification extends ChainVerification {
  tenant: string;
}

/** Checkpoints from a downloaded file, by tenant, after checking each signature; or the first bad one. */
export async function readCheckpointFile(path: string, publicKeyPem?: string): Promise<{ keyId: string; byTenant: Map<string, TrustedCheckpoint[]>; bad: Map<string, number> }> {
  const file = JSON.parse(readFileSync(path, 'utf8')) as CheckpointFile;
  if (file.format !== 'auditql-checkpoints' || !Array.isArray(file.checkpoints)) throw new Error(`${path} is not an auditql checkpoint file`);
  const key: KeyObject = createPublicKey(publicKeyPem ?? file.publicKey.pem);
  const byTenant = new Map<string, TrustedCheckpoint[]>();
  const bad = new Map<string, number>();
  for (const checkpoint of file.checkpoints) {
    // Only what the signature covers counts: the payload, not the unsigned fields beside it.
    const signed = await verifyCheckpoint(checkpoint.jws, key);
    if (!signed) {
      if (!bad.has(checkpoint.tenant)) bad.set(checkpoint.tenant, checkpoint.sequence);
      continue;
    }
    byTenant.set(signed.tenant, [...(byTenant.get(signed.tenant) ?? []), { sequence: signed.sequence, hash: signed.hash }]);
  }
  return { keyId: keyIdOf(key), byTenant, bad };
}

const signatureFailure = (tenant: string, sequence: number): TenantVerification => ({
  tenant, valid: false, checked: 0, firstInvalidSequence: sequence, reason: ChainFailure.CheckpointSignature,
  detail: `the checkpoint at ${sequence} does not verify with the public key`, headSequence: 0, headHash: GENESIS_HASH, anchorSequence: 0, checkpointsChecked: 0,
});

/**
 * Verifies every tenant's chain (or the given ones) in a SQLite file, read-only, inside one read transaction,
 * so that head, rows and tail are one snapshot even while a server writes: anything past the recorded head
 * is then a forgery, not a race.
 */
export async function verifyDatabaseFile(path: string, options: { tenants?: string[]; checkpoints?: Map<string, TrustedCheckpoint[]>; badCheckpoints?: Map<string, number> } = {}): Promise<TenantVerification[]> {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const columns = db.prepare(`SELECT "name" FROM pragma_table_info('audit_log')`).all() as Array<{ name: string }>;
    if (!columns.some((c) => c.name === 'sequence')) throw new Error(`${path} has no chain yet: run \`auditql migrate\` (or start the server) first`);
    db.exec('BEGIN');
    const tenants =
      options.tenants ??
      (db.prepare(`SELECT "tenant_id" AS "t" FROM "audit_chain_head" UNION SELECT DISTINCT "tenant_id" FROM "audit_log" ORDER BY 1`).all() as Array<{ t: string }>).map((r) => r.t);
    const headOf = db.prepare(`SELECT "sequence", "hash", "anchor_sequence", "anchor_hash" FROM "audit_chain_head" WHERE "tenant_id" = ?`);
    const statements = new Map<string, Database.Statement>();
    const query = (sql: string, params: unknown[]) => {
      let statement = statements.get(sql);
      if (!statement) statements.set(sql, (statement = db.prepare(sql).raw(true)));
      return statement.all(...params) as unknown[][];
    };
    const results: TenantVerification[] = [];
    for (const tenant of tenants) {
      const bad = options.badCheckpoints?.get(tenant);
      if (bad !== undefined) {
        results.push(signatureFailure(tenant, bad));
        continue;
      }
      const head = headOf.get(tenant) as { sequence: number; hash: string; anchor_sequence: number; anchor_hash: string } | undefined;
      const anchor = head ? { sequence: Number(head.anchor_sequence), hash: head.anchor_hash } : { sequence: 0, hash: GENESIS_HASH };
      const result = await verifyChain(chainBatches(query, tenant, anchor.sequence + 1, Infinity, 5000), {
        anchor,
        head: head ? { sequence: Number(head.sequence), hash: head.hash } : { sequence: 0, hash: GENESIS_HASH },
        checkpoints: options.checkpoints?.get(tenant) ?? [],
      });
      results.push({ tenant, ...result });
    }
    db.exec('COMMIT');
    return results;
  } finally {
    db.close();
  }
}

/** One line of an export (NDJSON; `.gz` too) as a chain row: JSON values are re-serialised in JCS form. */
export function chainRowFromExport(line: Record<string, unknown>): ChainRow {
  const text = (key: string) => (line[key] ?? null) as string | null;
  const json = (key: string) => (line[key] === null || line[key] === undefined ? null : canonicalJson(line[key] as JsonValue));
  const createdAt = typeof line.createdAt === 'string' ? Date.parse(line.createdAt) : Number(line.createdAt);
  return {
    tenantId: String(line.tenantId ?? line.tenant ?? 'default'),
    sequence: Number(line.sequence),
    hash: String(line.hash ?? ''),
    previousHash: String(line.previousHash ?? ''),
    hashVersion: Number(line.hashVersion),
    salt: text('salt'),
    personalPaths: (line.personalPaths as string[] | null) ?? [],
    erasedDigests: (line.erasedDigests as Record<string, string> | null) ?? null,
    createdAt,
    resource: String(line.resource),
    resourceId: text('resourceId'),
    action: String(line.action),
    authorId: text('authorId'),
    authorName: text('authorName'),
    authorType: text('authorType'),
    data: json('data'),
    previousData: json('previousData'),
    meta: json('meta'),
    ip: text('ip'),
    userAgent: text('userAgent'),
    transactionId: text('transactionId'),
    idempotencyKey: text('idempotencyKey'),
    redactedChanges: (line.redactedChanges as string[] | null) ?? null,
    recordedBy: text('recordedBy'),
  };
}

/**
 * Verifies an export file offline: per tenant, its rows in sequence order (a newest-first export verifies
 * as well as an oldest-first one; the order of lines is not evidence, the sequence is). A file that starts
 * at sequence 1 starts from the genesis hash; one that starts later takes its first row's previousHash as given.
 */
export async function verifyExportFile(path: string, checkpoints?: Map<string, TrustedCheckpoint[]>): Promise<TenantVerification[]> {
  const input = createReadStream(path);
  const lines = createInterface({ input: path.endsWith('.gz') ? input.pipe(createGunzip()) : input, crlfDelay: Infinity });
  const byTenant = new Map<string, ChainRow[]>();
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const row = chainRowFromExport(JSON.parse(line) as Record<string, unknown>);
    const rows = byTenant.get(row.tenantId);
    if (rows) rows.push(row);
    else byTenant.set(row.tenantId, [row]);
  }
  const results: TenantVerification[] = [];
  for (const [tenant, rows] of byTenant) {
    // Stable: two lines claiming one sequence stay in file order, and are reported as a duplicate.
    rows.sort((a, b) => a.sequence - b.sequence);
    const first = rows[0]!.sequence;
    const result = await verifyChain([rows], first === 1 ? { checkpoints: checkpoints?.get(tenant) } : { from: first, checkpoints: checkpoints?.get(tenant) });
    results.push({ tenant, ...result });
  }
  return results;
}

export function describe(result: TenantVerification): string {
  if (result.valid) {
    const anchor = result.anchorSequence > 0 ? `, from anchor ${result.anchorSequence}` : '';
    return `${result.tenant}: valid, ${result.checked} entries${anchor}, head ${result.headSequence} ${result.headHash.slice(0, 16)}…, ${result.checkpointsChecked} checkpoints held`;
  }
  return `${result.tenant}: BROKEN at sequence ${result.firstInvalidSequence}: ${result.reason} (${result.detail})`;
}

/** `auditql verify`: one line per tenant; exit status 0 when every chain verifies, 1 otherwise. */
export function verifyCommand(program: Command): void {
  program
    .command('verify')
    .description('recompute the tamper-evident chain of every tenant (or one) and hold it against signed checkpoints')
    .option('--database <path>', 'the SQLite file (default: DATABASE_URL)')
    .option('--tenant <tenant...>', 'only these tenants (default: every tenant)')
    .option('--checkpoints <file>', 'a checkpoint file downloaded from GET /checkpoints; detects a rewrite that recomputed every later hash')
    .option('--public-key <file>', 'PEM public key to check the checkpoints with (default: the one in the checkpoint file)')
    .option('--file <export>', 'verify an export (NDJSON, optionally .gz) instead of a database')
    .action(async (options: { database?: string; tenant?: string[]; checkpoints?: string; publicKey?: string; file?: string }) => {
      const checkpoints = options.checkpoints ? await readCheckpointFile(options.checkpoints, options.publicKey ? readFileSync(options.publicKey, 'utf8') : undefined) : undefined;
      if (checkpoints) process.stdout.write(`checkpoints checked with key ${checkpoints.keyId}\n`);
      let results: TenantVerification[];
      if (options.file) {
        results = await verifyExportFile(options.file, checkpoints?.byTenant);
      } else {
        const target = options.database ? parseDatabaseUrl(options.database) : loadConfig();
        if (target.dialect !== 'sqlite') {
          throw new Error('auditql verify reads SQLite files; on PostgreSQL run the verifyAuditChain query, or verify an export with --file');
        }
        results = await verifyDatabaseFile(target.database, { tenants: options.tenant, checkpoints: checkpoints?.byTenant, badCheckpoints: checkpoints?.bad });
      }
      if (options.tenant && options.file) results = results.filter((r) => options.tenant!.includes(r.tenant));
      for (const result of results) process.stdout.write(`${describe(result)}\n`);
      if (results.length === 0) process.stdout.write('no entries\n');
      if (results.some((r) => !r.valid)) process.exitCode = 1;
    });
}
