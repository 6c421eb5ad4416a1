import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataSource } from 'typeorm';
import { createStore } from '../src/db/store.js';
import { AuditLog } from '../src/db/entities/audit-log.entity.js';
import { applyAuditLogFilter } from '../src/services/audit-log-filter.js';
import { encodeCursor } from '../src/services/cursor.js';
import { statement } from '../src/db/sql.js';
import { postgresDataSourceOptions, openDatabase } from '../src/db/data-source.js';
import { random, seed, type SeedRow } from './helpers/seed.js';
import { createPostgresDatabase, POSTGRES, servicesAvailable } from './helpers/services.js';
import { logEvents, startTestApp, type TestApp } from './helpers/test-app.js';

const available = await servicesAvailable('test/postgres.test.ts', 'postgres');

const CHART = /* GraphQL */ `
  query($filter: AuditLogFilter, $interval: ActivityInterval, $timezone: String, $groupBy: ActivityGroupBy) {
    activityChart(filter: $filter, interval: $interval, timezone: $timezone, groupBy: $groupBy) { start end count groups { key count } }
  }
`;
const LIST = /* GraphQL */ `
  query($filter: AuditLogFilter, $first: Int, $after: String, $last: Int, $before: String, $order: AuditLogOrder) {
    auditLogs(filter: $filter, first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
      totalCount edges { cursor node { id resource action name resourceId createdAt } } pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
    }
  }
`;

/** The same entries, with chosen times and awkward names, for both databases. */
function rows(): SeedRow[] {
  const next = random(7);
  const t0 = Date.parse('2026-01-01T00:00:00.000Z');
  const out: SeedRow[] = [
    // Berlin's spring-forward night, New York's fall-back night (01:30 twice), Kolkata's half-hour offset.
    { resource: 'dst', action: 'a', createdAt: new Date('2026-03-28T22:59:59.999Z') },
    { resource: 'dst', action: 'a', createdAt: new Date('2026-03-28T23:00:00.000Z') },
    { resource: 'dst', action: 'b', createdAt: new Date('2026-03-29T21:59:59.999Z') },
    { resource: 'ny', action: 'a', createdAt: new Date('2026-11-01T05:30:00.000Z') },
    { resource: 'ny', action: 'a', createdAt: new Date('2026-11-01T06:30:00.000Z') },
    { resource: 'in', action: 'a', createdAt: new Date('2026-05-01T18:29:59.999Z') },
    { resource: 'in', action: 'a', createdAt: new Date('2026-05-01T18:30:00.000Z') },
    // Search: case folding of ASCII only, LIKE's wildcards taken literally, non-ASCII letters as they are.
    { resource: 'posts', action: 'update', name: 'Grüße an ÉLISE', createdAt: new Date(t0 + 1000) },
    { resource: 'posts', action: 'update', name: '100% done_now', createdAt: new Date(t0 + 2000) },
    { resource: 'posts', action: 'update', name: 'MiXeD CaSe Title', authorName: 'Zoë Quinn', createdAt: new Date(t0 + 3000) },
  ];
  for (let i = 0; i < 1200; i++) {
    out.push({
      resource: ['posts', 'users', 'orders'][Math.floor(next() * 3)]!,
      action: ['create', 'update', 'delete'][Math.floor(next() * 3)]!,
      authorId: ['u1', 'u2', null][Math.floor(next() * 3)]!,
      resourceId: String(Math.floor(next() * 50)),
      // Many entries share a millisecond, so that the id decides their order.
      createdAt: new Date(t0 + Math.floor(next() * 300) * 86_400_000 + (i % 7 === 0 ? 0 : Math.floor(next() * 86_400_000))),
    });
  }
  return out;
}

describe.skipIf(!available)('the server on PostgreSQL', () => {
  let pg: TestApp;
  let sqlite: TestApp;
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;

  beforeAll(async () => {
    database = await createPostgresDatabase();
    pg = await startTestApp({ postgresUrl: database.url });
    sqlite = await startTestApp();
    const data = rows();
    await seed(pg.dataSource, data);
    await seed(sqlite.dataSource, data);
  });
  afterAll(async () => {
    await pg?.close();
    await sqlite?.close();
    await database?.drop();
  });

  it('answers charts bucket for bucket as SQLite does: DST days, half-hour zones, every interval and grouping', async () => {
    const cases: Array<Record<string, unknown>> = [];
    for (const timezone of ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Asia/Kathmandu', 'UTC']) {
      for (const interval of ['HOUR', 'DAY', 'WEEK', 'MONTH']) {
        const span = interval === 'HOUR' ? ['2026-03-28T12:00:00.000Z', '2026-03-30T12:00:00.000Z'] : ['2026-01-01T00:00:00.000Z', '2026-11-30T00:00:00.000Z'];
        for (const groupBy of [null, 'ACTION', 'RESOURCE', 'AUTHOR']) {
          cases.push({ interval, timezone, groupBy, filter: { from: span[0], to: span[1] } });
        }
      }
    }
    cases.push({ interval: 'DAY', timezone: 'America/New_York', filter: { from: '2026-10-30T00:00:00.000Z', to: '2026-11-03T00:00:00.000Z', resource: ['ny'] } });
    cases.push({ interval: 'DAY', timezone: 'Asia/Kolkata', groupBy: 'ACTION', filter: { from: '2026-04-30T00:00:00.000Z', to: '2026-05-03T00:00:00.000Z', search: 'in' } });
    cases.push({ interval: 'MONTH', timezone: 'Europe/Berlin', groupBy: 'RESOURCE', filter: { from: '2026-01-01T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z', authorId: ['u1'] } });
    let nonEmpty = 0;
    for (const variables of cases) {
      const [a, b] = await Promise.all([pg.gql(CHART, variables), sqlite.gql(CHART, variables)]);
      expect(a.errors, JSON.stringify(variables)).toBeUndefined();
      expect(a.data, JSON.stringify(variables)).toEqual(b.data);
      if ((a.data!.activityChart as Array<{ count: number }>).some((bucket) => bucket.count > 0)) nonEmpty++;
    }
    expect(nonEmpty).toBeGreaterThan(cases.length - 5);
    // The New York fall-back day has 25 hours and both 01:30s.
    const ny = await pg.gql(CHART, cases.at(-3));
    expect(ny.data!.activityChart.map((b: { start: string; end: string; count: number }) => [b.start, b.count])).toContainEqual(['2026-11-01T04:00:00.000Z', 2]);
  }, 120_000);

  it.each([
    ['audit_activity_daily', ''],
    ['audit_activity_daily_by', `WHERE "dimension" = 'action'`],
    ['audit_activity_daily_by', `WHERE "dimension" = 'resource'`],
    ['audit_activity_by', `WHERE "dimension" = 'action'`],
    ['audit_activity_by', `WHERE "dimension" = 'resource'`],
  ])('keeps the rollup %s %s in step with inserts and deletes, in the same transaction', async (table, where) => {
    const sum = async () => Number((await pg.dataSource.query(`SELECT COALESCE(SUM("entries"), 0) AS "n" FROM "${table}" ${where}`))[0].n);
    const before = await sum();
    const count = Number((await pg.dataSource.query(`SELECT COUNT(*) AS "n" FROM "audit_log"`))[0].n);
    expect(before).toBe(count);
    await pg.dataSource.transaction(async (manager) => {
      await manager.query(`DELETE FROM "audit_log" WHERE "resource" = 'in'`);
      expect(Number((await manager.query(`SELECT SUM("entries") AS "n" FROM "${table}" ${where}`))[0].n)).toBe(before - 2);
      throw Object.assign(new Error('roll back'), { expected: true });
    }).catch((error: { expected?: boolean }) => {
      if (!error.expected) throw error;
    });
    expect(await sum()).toBe(before);
  });

  it('answers totalCount from its rollups as COUNT(*) over the entries, and as SQLite does, for ranges cut anywhere', async () => {
    const next = random(23);
    const day = 86_400_000;
    const t0 = Date.parse('2026-01-01T00:00:00.000Z');
    const cut = () => {
      const at = t0 - day + Math.floor(next() * 302 * day);
      return at - (at % [1, 900_000, 3_600_000, day][Math.floor(next() * 4)]!);
    };
    for (let i = 0; i < 40; i++) {
      const [from, to] = [cut(), cut()].sort((x, y) => x - y) as [number, number];
      const resource = i % 3 === 0 ? ['posts'] : undefined;
      const filter = { from: new Date(from).toISOString(), to: i % 5 === 0 ? undefined : new Date(to).toISOString(), resource };
      const [a, b] = await Promise.all([pg.gql(LIST, { filter, first: 1 }), sqlite.gql(LIST, { filter, first: 1 })]);
      const [{ n }] = await pg.dataSource.query(
        `SELECT COUNT(*) AS "n" FROM "audit_log" WHERE "tenant_id" = 'default' AND "created_at" >= $1 ${filter.to ? 'AND "created_at" < $2' : ''} ${resource ? `AND "resource" = 'posts'` : ''}`,
        filter.to ? [from, to] : [from],
      );
      expect(a.data!.auditLogs.totalCount, JSON.stringify(filter)).toBe(Number(n));
      expect(b.data!.auditLogs.totalCount).toBe(Number(n));
    }
  });

  it('pages with the same keyset cursors, forward and backward, filters and search included', async () => {
    for (const filter of [{}, { resource: ['posts'] }, { search: 'e' }, { search: '100%' }, { search: 'DONE_' }, { search: 'élise' }, { search: 'ÉLISE' }, { search: 'zoë q' }, { action: ['delete'], authorId: ['u2'] }]) {
      const walk = async (app: TestApp) => {
        const ids: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await app.gql(LIST, { filter, first: 97, after });
          expect(page.errors).toBeUndefined();
          ids.push(...page.data!.auditLogs.edges.map((e: { node: { id: string } }) => e.node.id));
          if (!page.data!.auditLogs.pageInfo.hasNextPage) return { ids, total: page.data!.auditLogs.totalCount };
          after = page.data!.auditLogs.pageInfo.endCursor;
        }
      };
      const [a, b] = await Promise.all([walk(pg), walk(sqlite)]);
      expect(a, JSON.stringify(filter)).toEqual(b);
      expect(a.ids.length).toBe(a.total);
      // Backward from the end gives the same entries.
      const back = await pg.gql(LIST, { filter, last: 5 });
      expect(back.data!.auditLogs.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual(a.ids.slice(-5));
    }
    // Any cursor the API hands out or accepts works, ids past PostgreSQL's integer range included.
    const far = await pg.gql(LIST, { first: 5, after: encodeCursor({ createdAt: 1, id: 999_999_999_999_999 }) });
    expect(far.errors).toBeUndefined();
    const special = await pg.gql(LIST, { filter: { search: '100%' }, first: 10 });
    expect(special.data!.auditLogs.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['100% done_now']);
    // PostgreSQL's lower() would fold É; the live filter and SQLite do not, so neither does the index.
    expect((await pg.gql(LIST, { filter: { search: 'élise' }, first: 10 })).data!.auditLogs.totalCount).toBe(0);
  });

  it('can answer search from the trigram index (the filter uses the index expression)', async () => {
    const qb = applyAuditLogFilter(pg.dataSource.createQueryBuilder(AuditLog, 'a').select('a.id'), { tenantId: 'default', search: 'mixed case' });
    const [sql, params] = qb.getQueryAndParameters();
    const rolledBack = new Error('roll back');
    let plan: Array<{ 'QUERY PLAN': string }> = [];
    // Planned over 50,000 more entries (1,200 are a seq scan's job), then rolled back.
    await pg.dataSource
      .transaction(async (manager) => {
        await manager.query(`INSERT INTO "audit_log" ("tenant_id", "resource", "action", "name", "created_at") SELECT 'default', 'r' || (g % 50), 'a', md5(g::text), g FROM generate_series(1, 50000) AS g`);
        await manager.query('ANALYZE "audit_log"');
        plan = await manager.query(`EXPLAIN ${sql}`, params);
        throw rolledBack;
      })
      .catch((error: unknown) => {
        if (error !== rolledBack) throw error;
      });
    expect(plan.map((row) => row['QUERY PLAN']).join('\n')).toMatch(/idx_audit_log_search/);
  });

  it('writes, returns and streams entries through the API, with JSON values as they were given', async () => {
    const [written] = await logEvents(pg, [{ resource: 'notes', action: 'create', resourceId: 'n1', data: 'just a string', meta: { n: 1.5, list: [true, null] }, previousData: { b: 1, a: 2 } }]);
    const read = await pg.gql(`query($id: ID!) { auditLog(id: $id) { data meta previousData createdAt changes { field } } }`, { id: written.id });
    expect(read.data!.auditLog).toMatchObject({ data: 'just a string', meta: { n: 1.5, list: [true, null] }, previousData: { b: 1, a: 2 } });
    // The time is the database's, close to now.
    expect(Math.abs(Date.parse(read.data!.auditLog.createdAt) - Date.now())).toBeLessThan(60_000);
    const renamed = await pg.gql(`mutation($id: ID!) { renameLog(id: $id, name: "Renamed") { name } }`, { id: written.id });
    expect(renamed.errors).toBeUndefined();
  });
});

describe.skipIf(!available)('the PostgreSQL store', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let dataSource: DataSource;
  beforeAll(async () => {
    database = await createPostgresDatabase();
    dataSource = await openDatabase(new DataSource(postgresDataSourceOptions({ url: database.url })));
  });
  afterAll(async () => {
    if (dataSource?.isInitialized) await dataSource.destroy();
    await database?.drop();
  });

  it('cancels a read past its budget in the database, as QUERY_TIMEOUT, and goes on reading', async () => {
    const store = createStore(dataSource, { readTimeoutMs: 200 });
    try {
      await expect(store.read(statement('SELECT pg_sleep(5)'))).rejects.toMatchObject({ extensions: { code: 'QUERY_TIMEOUT' } });
      await expect(store.read(statement('SELECT pg_sleep(5)'), { timeoutMs: 100 })).rejects.toMatchObject({ extensions: { code: 'QUERY_TIMEOUT' } });
      // A longer budget of its own lets a read run past the default.
      await expect(store.read(statement('SELECT pg_sleep(0.3) AS "slept"'), { timeoutMs: 5000 })).resolves.toHaveLength(1);
      // Nothing is left running in the database.
      const running = await dataSource.query(`SELECT COUNT(*) AS "n" FROM pg_stat_activity WHERE "query" LIKE 'SELECT pg_sleep(5)%' AND "state" = 'active'`);
      expect(Number(running[0].n)).toBe(0);
      expect(await store.read(statement('SELECT 1 AS "one"'))).toEqual([{ one: 1 }]);
    } finally {
      await store.close();
    }
  });

  it('streams rows in batches through a cursor', async () => {
    const store = createStore(dataSource);
    try {
      const batches: number[] = [];
      for await (const batch of store.stream(statement('SELECT generate_series(1, ?::int) AS "n"', [2500]), 1000)) batches.push(batch.length);
      expect(batches).toEqual([1000, 1000, 500]);
    } finally {
      await store.close();
    }
  });

  it('reports a database that refuses writes as STORAGE_UNAVAILABLE and not ready, and recovers by itself', async () => {
    const store = createStore(dataSource);
    const admin = await new DataSource({ type: 'postgres', ...POSTGRES, username: POSTGRES.user }).initialize();
    const write = () => store.write(function* () {
      yield statement('INSERT INTO "audit_storage_probe" ("id", "checked_at") VALUES (2, 1) ON CONFLICT ("id") DO UPDATE SET "checked_at" = excluded."checked_at" + 1');
    });
    try {
      await write();
      // Every new connection is read-only, and the existing ones are gone: what a failover to a standby looks like.
      await admin.query(`ALTER DATABASE "${database.name}" SET default_transaction_read_only = on`);
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [database.name]);
      const failure = await write().catch((error: unknown) => error);
      expect(failure).toMatchObject({ extensions: { code: 'STORAGE_UNAVAILABLE' } });
      expect(store.health.ready).toBe(false);
      expect(['25006', '57P01', 'CONNECTION_LOST']).toContain(store.health.problem?.code);
      // Waits for the store's own probe to find the database writable again (no write of the test's does it).
      const recovered = store.health.untilReady();
      await admin.query(`ALTER DATABASE "${database.name}" RESET default_transaction_read_only`);
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [database.name]);
      await recovered;
      await write();
    } finally {
      await admin.query(`ALTER DATABASE "${database.name}" RESET default_transaction_read_only`).catch(() => undefined);
      await admin.destroy();
      await store.close();
    }
  });
});
