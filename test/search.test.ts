import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLog } from '../src/db/entities/audit-log.entity.js';
import { indexPendingEntries, pendingSearchEntries, removeFromSearchIndex } from '../src/db/search-index.js';
import { exec } from '../src/db/sql.js';
import { matchesAuditLogFilter, parseAuditLogFilter, planSearch } from '../src/services/audit-log-filter.js';
import { collect, LOG_EVENT, startTestApp, type TestApp } from './helpers/test-app.js';
import { random, seed, seedBulk } from './helpers/seed.js';

let app: TestApp;
let rows: AuditLog[];

const NAMES = [null, 'Quarterly REPORT', 'ÄÖÜ Straße', 'İstanbul office', '50%_off', 'say "hi"', '🦄 unicorn deploy', 'tab\tless', 'ǅemal'];

beforeAll(async () => {
  app = await startTestApp();
  const next = random(11);
  const pick = <T,>(values: T[]) => values[Math.floor(next() * values.length)]!;
  rows = await seed(
    app.dataSource,
    Array.from({ length: 300 }, (_, i) => {
      const author = pick(['u1', 'u2', null]);
      return {
        resource: pick(['posts', 'Invoices', 'user_accounts']),
        action: pick(['create', 'update', 'LOGIN']),
        resourceId: pick(['A-17', '1234', null]),
        name: pick(NAMES),
        authorId: author,
        authorName: author ? { u1: 'Ann Admin', u2: 'Émile Zola' }[author] : null,
        createdAt: new Date(Date.UTC(2026, 2, 1) + i * 60_000),
      };
    }),
  );
});
afterAll(() => app.close());

const QUERY = 'query($search: String) { auditLogs(filter: { search: $search }, first: 500) { totalCount edges { node { id } } } }';

const SEARCHES = ['report', 'REPORT', 'ann ad', 'invoice', 'login', 'a-1', '234', '50%_', '%', '_', 'ß', 'äöü', 'ÄÖÜ', 'İst', 'ist', '"hi"', '🦄', 'unicorn', 'ǅem', 'ǆem', 'émile', 'ÉMILE', 'zzz', 'x', 'st'];

async function sqlMatches(search: string): Promise<string[]> {
  const result = await app.gql(QUERY, { search });
  expect(result.errors).toBeUndefined();
  const ids = result.data!.auditLogs.edges.map((e: { node: { id: string } }) => e.node.id).sort();
  expect(result.data!.auditLogs.totalCount).toBe(ids.length);
  return ids;
}

function liveMatches(search: string): string[] {
  const filter = parseAuditLogFilter({ search }, 'default');
  return rows.filter((row) => matchesAuditLogFilter(row, filter)).map((row) => String(row.id)).sort();
}

const deps = () => ({ dataSource: app.dataSource, store: app.server.store });

/** The plan SQLite chooses for the statement the server ran last that matched `pattern`. */
async function planOf(pattern: RegExp): Promise<string[]> {
  const index = app.sql.statements.findLastIndex((q) => pattern.test(q));
  expect(index).toBeGreaterThanOrEqual(0);
  const plan = (await app.dataSource.query(`EXPLAIN QUERY PLAN ${app.sql.statements[index]}`, app.sql.parameters[index])) as Array<{ detail: string }>;
  return plan.map((row) => row.detail);
}

describe('search', () => {
  it.each(SEARCHES)('"%s": SQL and the live filter agree, before and after indexing', async (search) => {
    // Seeded rows are past the watermark until the indexer runs: the scanned tail.
    await app.server.store.write(function* () {
      yield* exec('UPDATE audit_log_search_state SET indexed_through = 0');
      yield* exec('DELETE FROM audit_log_search');
    });
    const expected = liveMatches(search);
    expect(await sqlMatches(search)).toEqual(expected);
    await app.server.indexSearch();
    expect(await pendingSearchEntries(app.server.store)).toBe(0);
    expect(await sqlMatches(search)).toEqual(expected);
  });

  it('finds an entry as soon as its write is acknowledged, and after it is indexed', async () => {
    const written = await app.gql(LOG_EVENT, { input: { resource: 'tickets', action: 'escalate', name: 'Quokka incident' } });
    const id = written.data!.logEvent.id;
    expect(await sqlMatches('quokka')).toEqual([id]);
    await app.server.indexSearch();
    expect(await sqlMatches('quokka')).toEqual([id]);
  });

  it('reads the index for matches, not every entry', async () => {
    await app.server.indexSearch();
    app.sql.reset();
    await app.gql('{ auditLogs(filter: { search: "unicorn" }) { totalCount } }');
    const plan = await planOf(/COUNT\(\*\)/);
    expect(plan.join('\n')).toMatch(/SCAN audit_log_search VIRTUAL TABLE INDEX/);
    expect(plan.filter((line) => /^SCAN a\b/.test(line))).toEqual([]);
    app.sql.reset();
    await app.gql('{ auditLogs(first: 10, filter: { search: "unicorn" }) { edges { node { id } } } }');
    const page = await planOf(/ORDER BY/);
    expect(page.filter((line) => /^SCAN a\b/.test(line))).toEqual([]);
    // Each candidate looked up by id: not a walk of the tenant's whole time index testing each entry.
    expect(page).toContain('SEARCH a USING INTEGER PRIMARY KEY (rowid=?)');
  });

  it('keeps the index right when entries are renamed or deleted', async () => {
    const [id] = (await (async () => {
      const r = await app.gql(LOG_EVENT, { input: { resource: 'docs', action: 'create', name: 'Wombat draft' } });
      return [r.data!.logEvent.id as string];
    })())!;
    await app.server.indexSearch();
    expect(await sqlMatches('wombat')).toEqual([id]);
    await app.gql('mutation($id: ID!) { renameLog(id: $id, name: "Platypus final") { id } }', { id });
    expect(await sqlMatches('platypus')).toEqual([id]);
    const indexed = (phrase: string) => app.dataSource.query(`SELECT rowid FROM audit_log_search WHERE audit_log_search MATCH ?`, [`"${phrase}"`]);
    expect(await indexed('platypus')).toEqual([{ rowid: Number(id) }]);
    expect(await indexed('wombat')).toEqual([]);
    // Retention deletes entries and takes them out of the index in the same transaction.
    await app.server.store.write(function* () {
      yield* exec('DELETE FROM audit_log WHERE id = ?', [Number(id)]);
      yield* removeFromSearchIndex([Number(id)]);
    });
    expect(await indexed('platypus')).toEqual([]);
    expect(await sqlMatches('platypus')).toEqual([]);
  });

  it('walks the list for a page when a needle is everywhere, and gets the same entries', async () => {
    await seed(app.dataSource, Array.from({ length: 2100 }, (_, i) => ({ resource: 'common', action: 'create', name: `Common thing ${i}`, createdAt: new Date(Date.UTC(2026, 3, 1) + i) })));
    await indexPendingEntries(app.server.store, 5000);
    const filter = parseAuditLogFilter({ search: 'common thing' }, 'default');
    expect((await planSearch(deps(), filter)).searchPlan).toBe('scan');
    expect((await planSearch(deps(), parseAuditLogFilter({ search: 'unicorn' }, 'default'))).searchPlan).toBe('index');
    const page = await app.gql('{ auditLogs(first: 3, filter: { search: "COMMON THING" }) { totalCount edges { node { name } } } }');
    expect(page.data!.auditLogs.totalCount).toBe(2100);
    expect(page.data!.auditLogs.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['Common thing 2099', 'Common thing 2098', 'Common thing 2097']);
  });

  it('reads the index for a page when a common needle\'s matches are all far down the list, and gets the same entries', async () => {
    // 2,100 old matches, then 25,000 newer entries without the needle: a walk from the top would pass them all.
    await seed(app.dataSource, Array.from({ length: 2100 }, (_, i) => ({ resource: 'burst', action: 'create', name: `Old burst ${i}`, createdAt: new Date(Date.UTC(2025, 0, 1) + i) })));
    seedBulk(app.file, 25_000, (i) => ({ name: `Later ${i}`, created_at: Date.UTC(2026, 4, 1) + i }));
    while ((await indexPendingEntries(app.server.store, 5000)) > 0);
    const filter = parseAuditLogFilter({ search: 'old burst' }, 'default');
    expect((await planSearch(deps(), filter)).searchPlan).toBe('index');
    const page = await app.gql('{ auditLogs(first: 2, filter: { search: "Old Burst" }) { totalCount edges { node { name } } } }');
    expect(page.data!.auditLogs.totalCount).toBe(2100);
    expect(page.data!.auditLogs.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['Old burst 2099', 'Old burst 2098']);
  }, 120_000);

  it.each(['\u0000', 'a\u0000b', 'bell\u0007', 'esc\u001b[0m', '\u0085', 'lone \ud800'])('refuses %j with BAD_USER_INPUT in queries, charts and subscriptions', async (search) => {
    const list = await app.gql(QUERY, { search });
    // (Lone surrogates are refused earlier still, in any input, by the well-formed-input check.)
    expect(list.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const chart = await app.gql('query($search: String) { activityChart(filter: { search: $search }) { count } }', { search });
    expect(chart.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const live = await collect(app.wsClient(), 'subscription($search: String) { auditLogAdded(filter: { search: $search }) { id } }', { search }).done;
    expect(JSON.stringify(live)).toMatch(/BAD_USER_INPUT/);
  });

  it('charts a search from the index too', async () => {
    await app.server.indexSearch();
    const chart = await app.gql('{ activityChart(interval: MONTH, filter: { search: "unicorn", from: "2026-01-01T00:00:00Z", to: "2026-12-01T00:00:00Z" }) { count } }');
    const total = chart.data!.activityChart.reduce((sum: number, b: { count: number }) => sum + b.count, 0);
    expect(total).toBe(liveMatches('unicorn').length);
  });
});

describe('the search index on deletes', () => {
  it('does not merge its segments because rows were deleted (a purge batch would wait for it)', async () => {
    const [config] = (await app.dataSource.query(`SELECT "v" FROM "audit_log_search_config" WHERE "k" = 'deletemerge'`)) as Array<{ v: number }>;
    expect(config?.v).toBe(0);
  });
});
