import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataSource } from 'typeorm';
import { writeAuditEntries } from '../src/audit/writer.js';
import { openDatabase, postgresDataSourceOptions } from '../src/db/data-source.js';
import { createPostgresDatabase, servicesAvailable } from './helpers/services.js';

const available = await servicesAvailable('test/postgres-order.test.ts', 'postgres');

interface Row {
  id: number;
  created_at: string;
}

describe.skipIf(!available)('commit order on PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  const instances: DataSource[] = [];
  beforeAll(async () => {
    database = await createPostgresDatabase();
    // Two DataSources, as two server instances have: each its own pool of connections.
    for (let i = 0; i < 2; i++) instances.push(await openDatabase(new DataSource({ ...postgresDataSourceOptions({ url: database.url }), poolSize: 12 })));
  });
  afterAll(async () => {
    for (const instance of instances) if (instance.isInitialized) await instance.destroy();
    await database?.drop();
  });

  it('a reader following the log by cursor never skips an entry that commits late with a smaller id or time', async () => {
    // Transactions that write an entry and then take a while to commit (as an app's do), some rolling back,
    // on two instances at once, while a reader follows the tenant's log by keyset cursor, as a resumed
    // subscription does. Without one writer per tenant, an entry written first and committed last lands
    // behind the reader's cursor and is never seen.
    const writers = Array.from({ length: 60 }, async (_, i) => {
      const dataSource = instances[i % 2]!;
      await new Promise((resolve) => setTimeout(resolve, (i * 7) % 23));
      try {
        await dataSource.transaction(async (manager) => {
          await writeAuditEntries(manager, [{ resource: 'order', action: 'write', resourceId: String(i), tenantId: 'acme' }]);
          await new Promise((resolve) => setTimeout(resolve, (i * 13) % 17));
          await writeAuditEntries(manager, [{ resource: 'order', action: 'second', resourceId: String(i), tenantId: 'acme' }]);
          if (i % 6 === 5) throw new Error('rolled back');
        });
        return true;
      } catch {
        return false;
      }
    });
    let writing = true;
    const done = Promise.all(writers).then((outcomes) => {
      writing = false;
      return outcomes;
    });
    const seen: number[] = [];
    let last = { at: -1, id: -1 };
    const reader = instances[1]!;
    const follow = async () => {
      const rows = (await reader.query(
        `SELECT "id", "created_at" FROM "audit_log" WHERE "tenant_id" = 'acme' AND ("created_at", "id") > ($1, $2) ORDER BY "created_at", "id" LIMIT 7`,
        [last.at, last.id],
      )) as Row[];
      for (const row of rows) {
        seen.push(row.id);
        last = { at: Number(row.created_at), id: row.id };
      }
      return rows.length;
    };
    while (writing) await follow();
    while ((await follow()) > 0);
    const outcomes = await done;
    const committed = outcomes.filter(Boolean).length;
    const stored = (await reader.query(`SELECT "id" FROM "audit_log" WHERE "tenant_id" = 'acme' ORDER BY "id"`)) as Row[];
    expect(stored).toHaveLength(committed * 2);
    expect(committed).toBe(50);
    expect([...seen].sort((a, b) => a - b)).toEqual(stored.map((row) => row.id));
    // Both entries of one transaction are next to each other in the log: nothing else of the tenant came between.
    const byPosition = (await reader.query(`SELECT "resource_id", "action" FROM "audit_log" WHERE "tenant_id" = 'acme' ORDER BY "created_at", "id"`)) as Array<{ resource_id: string; action: string }>;
    for (let i = 0; i < byPosition.length; i += 2) {
      expect([byPosition[i]!.action, byPosition[i + 1]!.action]).toEqual(['write', 'second']);
      expect(byPosition[i]!.resource_id).toBe(byPosition[i + 1]!.resource_id);
    }
  });
});
