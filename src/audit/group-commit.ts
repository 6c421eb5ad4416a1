import { randomUUID } from 'node:crypto';
import type { AuditLog } from '../db/entities/audit-log.entity.js';
import { exec, type Dialect, type Work } from '../db/sql.js';
import type { AuditStore } from '../db/store.js';
import { StorageError } from '../shared/errors.js';
import type { ChainSettings } from './chain/settings.js';
import { entryRows, insertEntries, type AuditEntryDraft } from './writer.js';

export type TenantDraft = AuditEntryDraft & { tenantId: string };

export interface GroupCommitDeps {
  store: AuditStore;
  /** The time of the next batch, never decreasing (see writer.ts, `nextTimestamp`). */
  clock(): number;
  /** Stored rows of `audit_log` as entries. */
  toEntries(rows: Array<Record<string, unknown>>): AuditLog[];
  /** How entries are chained (personal fields; off only in a benchmark). */
  chain(): ChainSettings;
  /** Hands committed entries to live subscribers, in commit order. */
  publish(entries: AuditLog[]): void;
}

interface Pending {
  /** Written together or not at all (one `logEvent`: one draft; one `logEvents`: the whole list). */
  drafts: TenantDraft[];
  resolve: (entries: AuditLog[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Drafts per transaction: pendings are added while the batch holds fewer (a larger pending goes alone).
 * Room for four lists of 500 (`logEvents`) arriving together: a commit blocks the event loop until the
 * disk has it (synchronous=FULL: ~12 ms here), and one per list took a third of the time of lists of 500
 * under load; one per four of them, measured, ~30 % less time committing and 10–17 % more entries/s.
 */
const MAX_BATCH = 2000;

/**
 * Group commit for independent entries (logEvent): whatever arrives while a transaction is under way is
 * written by the next one, together. With synchronous=FULL every commit waits for the disk, so one commit
 * per batch instead of per entry multiplies the write rate under load, and costs nothing when idle.
 * Each entry keeps a transaction id of its own, since its writers did not act together. A list of drafts
 * handed over at once (`logEvents`) is one unit: its entries are written in the same transaction, in order,
 * all or none. If a batch fails for one of its units, the units are retried one by one, so that one bad
 * unit fails alone; if the storage itself fails, every unit of the batch fails with it (none was stored,
 * none is acknowledged).
 *
 * Returns the commit of a unit: it resolves with one stored entry per draft, in order (the entry an
 * idempotency key already names, or the new one).
 */
export function createGroupCommit(deps: GroupCommitDeps): (drafts: TenantDraft[]) => Promise<AuditLog[]> {
  const queue: Pending[] = [];
  let running = false;
  const write = (drafts: TenantDraft[]) => deps.store.write(() => writeBatch(deps.store.dialect, drafts, deps));

  const flush = async () => {
    running = true;
    while (queue.length > 0) {
      // A commit blocks the event loop (better-sqlite3 is synchronous): yield once so that the requests
      // that arrived meanwhile join this batch instead of each waiting for a commit of its own.
      await new Promise((resolve) => setImmediate(resolve));
      let size = queue[0]!.drafts.length;
      let count = 1;
      while (count < queue.length && size + queue[count]!.drafts.length <= MAX_BATCH) size += queue[count++]!.drafts.length;
      const batch = queue.splice(0, count);
      try {
        const { entries, fresh } = await write(batch.flatMap((p) => p.drafts));
        deps.publish(fresh);
        let at = 0;
        for (const pending of batch) pending.resolve(entries.slice(at, (at += pending.drafts.length)));
      } catch (error) {
        if (error instanceof StorageError || batch.length === 1) {
          for (const pending of batch) pending.reject(error);
          continue;
        }
        for (const pending of batch) {
          try {
            const { entries, fresh } = await write(pending.drafts);
            deps.publish(fresh);
            pending.resolve(entries);
          } catch (single) {
            pending.reject(single);
          }
        }
      }
    }
    running = false;
  };

  return (drafts) =>
    drafts.length === 0
      ? Promise.resolve([])
      : new Promise<AuditLog[]>((resolve, reject) => {
          queue.push({ drafts, resolve, reject });
          if (!running) void flush();
        });
}

/**
 * Writes the drafts, returning for each the entry stored: a new one, or the one its idempotency key
 * already names (`fresh`: only the new ones, to publish).
 */
function* writeBatch(dialect: Dialect, drafts: TenantDraft[], deps: GroupCommitDeps): Work<{ entries: AuditLog[]; fresh: AuditLog[] }> {
  const keyOf = (tenantId: string, key: string) => `${tenantId}\u0000${key}`;
  const existing = new Map<string, AuditLog>();
  const keyed = drafts.filter((d) => d.idempotencyKey != null);
  if (keyed.length > 0) {
    const where = keyed.map(() => '("tenant_id" = ? AND "idempotency_key" = ?)').join(' OR ');
    const quoted = dialect === 'mysql' ? where.replace(/"/g, '`') : where;
    const { rows } = yield* exec(`SELECT * FROM ${dialect === 'mysql' ? '`audit_log`' : '"audit_log"'} WHERE ${quoted}`, keyed.flatMap((d) => [d.tenantId, d.idempotencyKey]));
    for (const entry of deps.toEntries(rows)) existing.set(keyOf(entry.tenantId, entry.idempotencyKey!), entry);
  }
  const fresh: TenantDraft[] = [];
  const slots: Array<{ existing?: AuditLog; fresh?: number }> = [];
  const inBatch = new Map<string, number>();
  for (const draft of drafts) {
    const key = draft.idempotencyKey != null ? keyOf(draft.tenantId, draft.idempotencyKey) : undefined;
    if (key && existing.has(key)) slots.push({ existing: existing.get(key) });
    else if (key && inBatch.has(key)) slots.push({ fresh: inBatch.get(key) });
    else {
      if (key) inBatch.set(key, fresh.length);
      slots.push({ fresh: fresh.length });
      fresh.push({ ...draft, transactionId: draft.transactionId ?? randomUUID() });
    }
  }
  // The time is taken inside the transaction, so that it never decreases in commit order.
  const rows = entryRows(fresh, { transactionId: '', createdAt: new Date(deps.clock()) });
  yield* insertEntries(dialect, rows, deps.chain());
  return { entries: slots.map((slot) => slot.existing ?? rows[slot.fresh!]!), fresh: rows };
}
