import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLog } from '../src/db/entities/audit-log.entity.js';
import { matchesAuditLogFilter, parseAuditLogFilter } from '../src/services/audit-log-filter.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';
import { random, seed } from './helpers/seed.js';

let app: TestApp;
let rows: AuditLog[];
const t0 = Date.parse('2026-03-01T00:00:00.000Z');

beforeAll(async () => {
  app = await startTestApp();
  const next = random(7);
  const pick = <T,>(values: T[]) => values[Math.floor(next() * values.length)]!;
  const seeded = [];
  for (let i = 0; i < 240; i++) {
    const author = pick(['u1', 'u2', 'u3', null]);
    seeded.push({
      resource: pick(['posts', 'users', 'orders', 'Invoices']),
      action: pick(['create', 'update', 'delete', 'login']),
      resourceId: pick(['1', '2', '3', null]),
      name: pick([null, 'Quarterly REPORT', 'ünïcode name', '50%_off']),
      authorId: author,
      authorName: author ? { u1: 'Ann Admin', u2: 'Bob', u3: 'Carla' }[author] : null,
      // Several entries share a millisecond, so ties on createdAt are exercised.
      createdAt: new Date(t0 + Math.floor(i / 3) * 3_600_000),
    });
  }
  rows = await seed(app.dataSource, seeded);
});
afterAll(() => app.close());

const QUERY = /* GraphQL */ `
  query($filter: AuditLogFilter) { auditLogs(filter: $filter, first: 500) { totalCount edges { node { id } } } }
`;

const iso = (ms: number) => new Date(ms).toISOString();

const cases: Array<[string, Record<string, unknown>, (row: AuditLog) => boolean]> = [
  ['no filter', {}, () => true],
  ['one resource', { resource: ['posts'] }, (r) => r.resource === 'posts'],
  ['several resources', { resource: ['posts', 'orders'] }, (r) => r.resource === 'posts' || r.resource === 'orders'],
  ['resourceId', { resourceId: '2' }, (r) => r.resourceId === '2'],
  ['resource and resourceId (a record\'s history)', { resource: ['users'], resourceId: '1' }, (r) => r.resource === 'users' && r.resourceId === '1'],
  ['action', { action: ['delete', 'login'] }, (r) => r.action === 'delete' || r.action === 'login'],
  ['authorId', { authorId: ['u1', 'u3'] }, (r) => r.authorId === 'u1' || r.authorId === 'u3'],
  ['from (inclusive)', { from: iso(t0 + 40 * 3_600_000) }, (r) => r.createdAt.getTime() >= t0 + 40 * 3_600_000],
  ['to (exclusive)', { to: iso(t0 + 40 * 3_600_000) }, (r) => r.createdAt.getTime() < t0 + 40 * 3_600_000],
  ['from and to', { from: iso(t0 + 10 * 3_600_000), to: iso(t0 + 20 * 3_600_000) }, (r) => r.createdAt.getTime() >= t0 + 10 * 3_600_000 && r.createdAt.getTime() < t0 + 20 * 3_600_000],
  ['search, case-insensitive over name', { search: 'report' }, (r) => !!r.name?.toLowerCase().includes('report')],
  ['search over author name', { search: 'ANN ad' }, (r) => r.authorName === 'Ann Admin'],
  ['search over resource', { search: 'invoice' }, (r) => r.resource === 'Invoices'],
  ['search over action', { search: 'logi' }, (r) => r.action === 'login'],
  ['search with LIKE wildcards taken literally', { search: '50%_' }, (r) => r.name === '50%_off'],
  ['search with % alone matches only a literal %', { search: '%' }, (r) => r.name === '50%_off'],
  ['search over resourceId', { search: '3' }, (r) => r.resourceId === '3'],
  [
    'everything combined',
    { resource: ['posts', 'users'], action: ['update', 'create'], authorId: ['u1', 'u2'], from: iso(t0 + 5 * 3_600_000), to: iso(t0 + 70 * 3_600_000), search: 'b' },
    (r) =>
      ['posts', 'users'].includes(r.resource) &&
      ['update', 'create'].includes(r.action) &&
      ['u1', 'u2'].includes(r.authorId ?? '') &&
      r.createdAt.getTime() >= t0 + 5 * 3_600_000 &&
      r.createdAt.getTime() < t0 + 70 * 3_600_000 &&
      [r.name, r.resource, r.resourceId, r.action, r.authorName].some((v) => v?.toLowerCase().includes('b')),
  ],
  ['a value nothing has', { resource: ['nothing'] }, () => false],
  ["SQL-ish text is just text", { search: "' OR 1=1 --", resourceId: "1' OR '1'='1" }, () => false],
];

describe('auditLogs filters', () => {
  it.each(cases)('%s', async (_label, filter, expected) => {
    const want = rows.filter(expected).map((r) => String(r.id)).sort();
    const result = await app.gql(QUERY, { filter });
    expect(result.errors).toBeUndefined();
    const got = result.data!.auditLogs.edges.map((e: { node: { id: string } }) => e.node.id).sort();
    expect(got).toEqual(want);
    expect(result.data!.auditLogs.totalCount).toBe(want.length);
    // Live subscribers filter in memory: that matcher must agree with SQL on every row.
    const parsed = parseAuditLogFilter({ ...filter, from: filter.from ? new Date(filter.from as string) : null, to: filter.to ? new Date(filter.to as string) : null } as never, 'default');
    expect(rows.filter((r) => matchesAuditLogFilter(r, parsed)).map((r) => String(r.id)).sort()).toEqual(want);
  });

  it.each([
    ['from after to', { from: iso(t0 + 10), to: iso(t0) }, 'filter.from'],
    ['an empty list', { resource: [] }, 'filter.resource'],
    ['an overlong search', { search: 'x'.repeat(201) }, 'filter.search'],
  ])('refuses %s with BAD_USER_INPUT', async (_label, filter, argument) => {
    const result = await app.gql(QUERY, { filter });
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument });
  });
});
