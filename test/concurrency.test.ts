import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAuditEntries } from '../src/audit/writer.js';
import { AuditLog } from '../src/db/entities/audit-log.entity.js';
import { writeTransaction } from '../src/db/transaction.js';
import { LOG_EVENT, startTestApp, type TestApp } from './helpers/test-app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  // A real failure inside the write transaction, raised by SQLite itself.
  await app.dataSource.query(`CREATE TRIGGER refuse_marked BEFORE INSERT ON audit_log WHEN NEW.resource = 'fail' BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END`);
});
afterAll(() => app.close());

describe('concurrent writers on one SQLite connection', () => {
  it('stores every acknowledged write and none that failed (60 concurrent HTTP writers, 15 failing)', async () => {
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        app.gql(LOG_EVENT, { input: { resource: i % 4 === 3 ? 'fail' : 'ok', action: 'create', resourceId: String(i), idempotencyKey: `k${i}` } }).then((r) => ({ i, r })),
      ),
    );
    const acknowledged = results.filter(({ r }) => !r.errors).map(({ r }) => r.data!.logEvent.id as string);
    const failed = results.filter(({ r }) => r.errors);
    expect(acknowledged).toHaveLength(45);
    expect(failed).toHaveLength(15);
    for (const { r } of failed) {
      // Masked: the client learns nothing about SQL or the trigger.
      expect(r.errors![0]!.message).toBe('Unexpected error.');
      expect(JSON.stringify(r.errors)).not.toMatch(/trigger|INSERT|audit_log|sqlite/i);
    }
    const stored = await app.dataSource.getRepository(AuditLog).find();
    expect(stored.map((e) => String(e.id)).sort()).toEqual([...acknowledged].sort());
    expect(stored.every((e) => e.resource === 'ok')).toBe(true);
  });

  it('keeps concurrent transactions apart: a rollback takes only its own rows', async () => {
    const before = await app.dataSource.getRepository(AuditLog).count();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        writeTransaction(app.dataSource, async (manager) => {
          await writeAuditEntries(manager, [{ resource: 'tx', action: 'first', resourceId: String(i) }]);
          await new Promise((r) => setTimeout(r, 1)); // yield mid-transaction to the timers, as real work does (not a wait for an event)
          await writeAuditEntries(manager, [{ resource: 'tx', action: 'second', resourceId: String(i) }]);
          if (i % 3 === 0) throw new Error(`fail ${i}`);
          return i;
        }),
      ),
    );
    const committed = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [String(o.value)] : []));
    expect(committed).toHaveLength(26);
    const rows = await app.dataSource.getRepository(AuditLog).find({ where: { resource: 'tx' } });
    expect(rows).toHaveLength(52);
    expect([...new Set(rows.map((r) => r.resourceId))].sort()).toEqual([...committed].sort());
    // Both rows of one transaction share its transaction id, and no two transactions share one.
    const byTx = new Map<string, string[]>();
    for (const row of rows) byTx.set(row.transactionId!, [...(byTx.get(row.transactionId!) ?? []), row.resourceId!]);
    expect(byTx.size).toBe(26);
    for (const ids of byTx.values()) expect(new Set(ids).size).toBe(1);
    expect(await app.dataSource.getRepository(AuditLog).count()).toBe(before + 52);
  });
});
