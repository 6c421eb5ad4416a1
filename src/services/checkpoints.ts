import type { DataSource } from 'typeorm';
import { read, writeTransaction } from '../db/transaction.js';
import { queryWith } from '../db/sql.js';
import { keyIdOf, publicKeyPem, signCheckpoint, verifyCheckpointWithAny, verifyingKeys, type CheckpointFile, type CheckpointKey, type SignedCheckpoint } from '../shared/chain/checkpoint.js';
import { badUserInput } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';

export interface StoredCheckpoint extends SignedCheckpoint {
  id: number;
}

interface CheckpointRow {
  id: number | string;
  tenant_id: string;
  sequence: number | string;
  hash: string;
  created_at: number | string;
  key_id: string;
  jws: string;
}

const fromRow = (row: CheckpointRow): StoredCheckpoint => ({
  id: Number(row.id),
  tenant: row.tenant_id,
  sequence: Number(row.sequence),
  hash: row.hash,
  createdAt: Number(row.created_at),
  keyId: row.key_id,
  jws: row.jws,
});

export interface ChainHeadRow {
  sequence: number;
  hash: string;
  anchorSequence: number;
  anchorHash: string;
}

/** The tenant's recorded head and anchor; null before its first entry. */
export async function readChainHead(dataSource: DataSource, tenant: string): Promise<ChainHeadRow | null> {
  const [row] = (await read(dataSource, (m) =>
    queryWith(m, `SELECT "sequence", "hash", "anchor_sequence", "anchor_hash" FROM "audit_chain_head" WHERE "tenant_id" = ?`, [tenant]),
  )) as Array<{ sequence: number | string; hash: string; anchor_sequence: number | string; anchor_hash: string }>;
  return row ? { sequence: Number(row.sequence), hash: row.hash, anchorSequence: Number(row.anchor_sequence), anchorHash: row.anchor_hash } : null;
}

/** Signs the tenant's current head and stores the checkpoint. */
export async function createCheckpoint(dataSource: DataSource, key: CheckpointKey, tenant: string): Promise<StoredCheckpoint> {
  const head = await readChainHead(dataSource, tenant);
  if (!head || head.sequence === head.anchorSequence) throw badUserInput('This tenant has no entries to checkpoint yet');
  const signed = await signCheckpoint({ tenant, sequence: head.sequence, hash: head.hash, createdAt: Date.now() }, key);
  const postgres = dataSource.options.type === 'postgres';
  const inserted = await writeTransaction(dataSource, (m) =>
    queryWith<unknown>(m, `INSERT INTO "audit_checkpoint" ("tenant_id", "sequence", "hash", "created_at", "key_id", "jws") VALUES (?, ?, ?, ?, ?, ?)${postgres ? ' RETURNING "id"' : ''}`, [
      tenant, signed.sequence, signed.hash, signed.createdAt, signed.keyId, signed.jws,
    ]),
  );
  // SQLite answers with the new row id; PostgreSQL with the RETURNING row.
  const id = postgres ? (inserted as Array<{ id: number | string }>)[0]!.id : inserted;
  return { ...signed, id: Number(id) };
}

/** The tenant's checkpoints, newest first, `first` at a time after the checkpoint id `after`. */
export async function listCheckpoints(dataSource: DataSource, tenant: string, first: number, after?: number): Promise<StoredCheckpoint[]> {
  const rows = (await read(dataSource, (m) =>
    queryWith(m, `SELECT * FROM "audit_checkpoint" WHERE "tenant_id" = ? AND "id" < CAST(? AS BIGINT) ORDER BY "id" DESC LIMIT ?`, [tenant, after ?? Number.MAX_SAFE_INTEGER, first]),
  )) as CheckpointRow[];
  return rows.map(fromRow);
}

/** Every checkpoint of the tenant, oldest first. */
export async function allCheckpoints(dataSource: DataSource, tenant: string): Promise<StoredCheckpoint[]> {
  const rows = (await read(dataSource, (m) => queryWith(m, `SELECT * FROM "audit_checkpoint" WHERE "tenant_id" = ? ORDER BY "sequence", "id"`, [tenant]))) as CheckpointRow[];
  return rows.map(fromRow);
}

/** The file a tenant's owner downloads and keeps elsewhere. */
export async function checkpointFile(dataSource: DataSource, key: CheckpointKey, tenant: string): Promise<CheckpointFile> {
  const checkpoints = await allCheckpoints(dataSource, tenant);
  return {
    format: 'auditql-checkpoints',
    version: 1,
    publicKey: { keyId: key.keyId, pem: publicKeyPem(key.publicKey) },
    ...(key.previous?.length ? { previousPublicKeys: key.previous.map((k) => ({ keyId: keyIdOf(k), pem: publicKeyPem(k) })) } : {}),
    checkpoints: checkpoints.map(({ id: _id, ...checkpoint }) => checkpoint),
  };
}

/** The stored checkpoints whose signature verifies, and the first that does not. */
export async function trustedCheckpoints(checkpoints: readonly SignedCheckpoint[], key: Pick<CheckpointKey, 'publicKey' | 'previous'>, tenant: string) {
  const trusted: Array<{ sequence: number; hash: string }> = [];
  const keys = verifyingKeys(key);
  for (const checkpoint of checkpoints) {
    const signed = await verifyCheckpointWithAny(checkpoint.jws, keys);
    if (!signed || signed.tenant !== tenant) return { trusted, bad: checkpoint };
    trusted.push({ sequence: signed.sequence, hash: signed.hash });
  }
  return { trusted, bad: null };
}

/**
 * Every `intervalMs`, a checkpoint for each tenant whose chain moved since its last one. Returns stop().
 * The timer does not keep the process alive.
 */
export function scheduleCheckpoints(
  dataSource: DataSource,
  key: CheckpointKey,
  intervalMs: number,
  logger: Pick<Logger, 'error'>,
  onCheckpoint?: (checkpoint: StoredCheckpoint) => void,
): () => void {
  let running = false;
  const tick = async () => {
    if (running || !dataSource.isInitialized) return;
    running = true;
    try {
      const due = (await read(dataSource, (m) =>
        m.query(
          `SELECT h."tenant_id" AS "tenant" FROM "audit_chain_head" h WHERE h."sequence" > h."anchor_sequence" AND h."sequence" > COALESCE((SELECT MAX(c."sequence") FROM "audit_checkpoint" c WHERE c."tenant_id" = h."tenant_id"), 0)`,
        ),
      )) as Array<{ tenant: string }>;
      for (const { tenant } of due) onCheckpoint?.(await createCheckpoint(dataSource, key, tenant));
    } catch (error) {
      logger.error({ err: error }, 'scheduled checkpoint failed');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
