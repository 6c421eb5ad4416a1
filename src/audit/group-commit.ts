import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { writeAuditEntries, type AuditEntryDraft } from './writer.js';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import { writeTransaction } from '../db/transaction.js';

interface Pending {
  draft: AuditEntryDraft & { tenantId: string };
  resolve: (entry: AuditLog) => void;
  reject: (error: unknown) => void;
}

const MAX_BATCH = 500;
const batchers = new WeakMap<DataSource, (draft: AuditEntryDraft & { tenantId: string }) => Promise<AuditLog>>();

/**
 * Group commit for independent entries (logEvent): whatever arrives while a transaction is under way is
 * written by the next one, together. With synchronous=FULL every commit waits for the disk, so one commit
 * per batch instead of per entry multiplies the write rate under load, and costs nothing when idle.
 * Each entry keeps a transaction id of its own, since its writers did not act together. If a batch fails,
 * its entries are retried one by one, so that one bad entry fails alone.
 */
export function groupCommit(dataSource: DataSource): (draft: AuditEntryDraft & { tenantId: string }) => Promise<AuditLog> {
  let submit = batchers.get(dataSource);
  if (submit) return submit;
  const queue: Pending[] = [];
  let running = false;

  const flush = async () => {
    running = true;
    while (queue.length > 0) {
      // A commit blocks the event loop (better-sqlite3 is synchronous): yield once so that the requests
      // that arrived meanwhile join this batch instead of each waiting for a commit of its own.
      await new Promise((resolve) => setImmediate(resolve));
      const batch = queue.splice(0, MAX_BATCH);
      try {
        const entries = await writeTransaction(dataSource, (manager) => writeBatch(manager, batch.map((p) => p.draft)));
        batch.forEach((p, i) => p.resolve(entries[i]!));
      } catch {
        for (const pending of batch) {
          try {
            const [entry] = await writeTransaction(dataSource, (manager) => writeBatch(manager, [pending.draft]));
            pending.resolve(entry!);
          } catch (error) {
            pending.reject(error);
          }
        }
      }
    }
    running = false;
  };

  submit = (draft) =>
    new Promise<AuditLog>((resolve, reject) => {
      queue.push({ draft, resolve, reject });
      if (!running) void flush();
    });
  batchers.set(dataSource, submit);
  return submit;
}

/** Writes the drafts, returning for each the entry stored: a new one, or the one its idempotency key already names. */
async function writeBatch(manager: EntityManager, drafts: Array<AuditEntryDraft & { tenantId: string }>): Promise<AuditLog[]> {
  const keyed = drafts.filter((d) => d.idempotencyKey != null);
  const existing = new Map<string, AuditLog>();
  if (keyed.length > 0) {
    const found = await manager.find(AuditLog, { where: keyed.map((d) => ({ tenantId: d.tenantId, idempotencyKey: d.idempotencyKey! })) });
    for (const entry of found) existing.set(`${entry.tenantId}\u0000${entry.idempotencyKey}`, entry);
  }
  const fresh: Array<AuditEntryDraft & { tenantId: string }> = [];
  const slots: Array<{ existing?: AuditLog; fresh?: number; key?: string }> = [];
  const inBatch = new Map<string, number>();
  for (const draft of drafts) {
    const key = draft.idempotencyKey != null ? `${draft.tenantId}\u0000${draft.idempotencyKey}` : undefined;
    if (key && existing.has(key)) slots.push({ existing: existing.get(key) });
    else if (key && inBatch.has(key)) slots.push({ fresh: inBatch.get(key) });
    else {
      if (key) inBatch.set(key, fresh.length);
      slots.push({ fresh: fresh.length });
      fresh.push({ ...draft, transactionId: draft.transactionId ?? randomUUID() });
    }
  }
  const written = await writeAuditEntries(manager, fresh);
  return slots.map((slot) => slot.existing ?? written[slot.fresh!]!);
}
