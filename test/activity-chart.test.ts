import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logEvents, startTestApp, type TestApp } from './helpers/test-app.js';
import { random, seed } from './helpers/seed.js';

let app: TestApp;

const CHART = /* GraphQL */ `
  query($filter: AuditLogFilter, $interval: ActivityInterval, $timezone: String, $groupBy: ActivityGroupBy) {
    activityChart(filter: $filter, interval: $interval, timezone: $timezone, groupBy: $groupBy) { start end count groups { key count } }
  }
`;
const COUNT = 'query($filter: AuditLogFilter) { auditLogs(filter: $filter, first: 1) { totalCount } }';

beforeAll(async () => {
  app = await startTestApp();
  await seed(app.dataSource, [
    // Around Berlin's spring-forward night (2026-03-29, 02:00 CET -> 03:00 CEST).
    { resource: 'dst', action: 'a', createdAt: new Date('2026-03-28T22:59:59.999Z') }, // 23:59:59.999 on the 28th
    { resource: 'dst', action: 'a', createdAt: new Date('2026-03-28T23:00:00.000Z') }, // 00:00 on the 29th
    { resource: 'dst', action: 'b', createdAt: new Date('2026-03-29T21:59:59.999Z') }, // 23:59:59.999 CEST on the 29th
    { resource: 'dst', action: 'b', createdAt: new Date('2026-03-29T22:00:00.000Z') }, // 00:00 CEST on the 30th
    // New York's fall-back night (2026-11-01, 02:00 EDT -> 01:00 EST): 01:30 happens twice.
    { resource: 'ny', action: 'a', createdAt: new Date('2026-11-01T05:30:00.000Z') }, // 01:30 EDT
    { resource: 'ny', action: 'a', createdAt: new Date('2026-11-01T06:30:00.000Z') }, // 01:30 EST
  ]);
  const next = random(11);
  const t0 = Date.parse('2026-01-01T00:00:00.000Z');
  await seed(
    app.dataSource,
    Array.from({ length: 1500 }, () => ({
      resource: ['posts', 'users', 'orders'][Math.floor(next() * 3)]!,
      action: ['create', 'update', 'delete'][Math.floor(next() * 3)]!,
      authorId: ['u1', 'u2', null][Math.floor(next() * 3)]!,
      createdAt: new Date(t0 + Math.floor(next() * 200 * 86_400_000)),
    })),
  );
});
afterAll(() => app.close());

async function chart(variables: Record<string, unknown>) {
  const result = await app.gql(CHART, variables);
  expect(result.errors).toBeUndefined();
  return result.data!.activityChart as Array<{ start: string; end: string; count: number; groups: Array<{ key: string; count: number }> }>;
}

describe('activityChart', () => {
  it('starts DAY buckets at local midnight across a DST change (Europe/Berlin), including the 23-hour day', async () => {
    const buckets = await chart({
      filter: { resource: ['dst'], from: '2026-03-26T23:00:00.000Z', to: '2026-03-31T22:00:00.000Z' },
      interval: 'DAY',
      timezone: 'Europe/Berlin',
    });
    expect(buckets.map((b) => [b.start, b.end, b.count])).toEqual([
      ['2026-03-26T23:00:00.000Z', '2026-03-27T23:00:00.000Z', 0],
      ['2026-03-27T23:00:00.000Z', '2026-03-28T23:00:00.000Z', 1],
      ['2026-03-28T23:00:00.000Z', '2026-03-29T22:00:00.000Z', 2],
      ['2026-03-29T22:00:00.000Z', '2026-03-30T22:00:00.000Z', 1],
      ['2026-03-30T22:00:00.000Z', '2026-03-31T22:00:00.000Z', 0],
    ]);
  });

  it('keeps both 01:00 hours of a fall-back night apart (America/New_York, HOUR)', async () => {
    const buckets = await chart({
      filter: { resource: ['ny'], from: '2026-11-01T04:00:00.000Z', to: '2026-11-01T08:00:00.000Z' },
      interval: 'HOUR',
      timezone: 'America/New_York',
    });
    expect(buckets.map((b) => [b.start, b.count])).toEqual([
      ['2026-11-01T04:00:00.000Z', 0],
      ['2026-11-01T05:00:00.000Z', 1],
      ['2026-11-01T06:00:00.000Z', 1],
      ['2026-11-01T07:00:00.000Z', 0],
    ]);
  });

  it('starts WEEK buckets on local Monday and MONTH buckets on the local first', async () => {
    const weeks = await chart({ filter: { from: '2026-03-04T12:00:00.000Z', to: '2026-03-20T00:00:00.000Z' }, interval: 'WEEK', timezone: 'Europe/Berlin' });
    expect(weeks.map((b) => b.start)).toEqual(['2026-03-01T23:00:00.000Z', '2026-03-08T23:00:00.000Z', '2026-03-15T23:00:00.000Z']);
    const months = await chart({ filter: { from: '2026-02-10T00:00:00.000Z', to: '2026-04-02T00:00:00.000Z' }, interval: 'MONTH', timezone: 'America/New_York' });
    expect(months.map((b) => b.start)).toEqual(['2026-02-01T05:00:00.000Z', '2026-03-01T05:00:00.000Z', '2026-04-01T04:00:00.000Z']);
  });

  it.each([
    ['DAY', 'UTC', {}],
    ['DAY', 'Europe/Berlin', { resource: ['posts'] }],
    ['HOUR', 'Asia/Kolkata', { action: ['update'], authorId: ['u1'] }],
    ['WEEK', 'America/New_York', { resource: ['orders', 'users'] }],
    ['MONTH', 'Australia/Lord_Howe', {}],
  ])('adds up to totalCount for the same filter (%s in %s, %o)', async (interval, timezone, extra) => {
    const filter = { ...extra, from: '2026-02-03T10:17:00.000Z', to: interval === 'HOUR' ? '2026-02-20T00:00:00.000Z' : '2026-06-30T00:00:00.000Z' };
    const buckets = await chart({ filter, interval, timezone });
    const total = (await app.gql(COUNT, { filter })).data!.auditLogs.totalCount;
    expect(total).toBeGreaterThan(0);
    expect(buckets.reduce((sum, b) => sum + b.count, 0)).toBe(total);
    // Contiguous, and empty intervals are present with 0.
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.start).toBe(buckets[i - 1]!.end);
    expect(Date.parse(buckets[0]!.start)).toBeLessThanOrEqual(Date.parse(filter.from));
    expect(Date.parse(buckets.at(-1)!.end)).toBeGreaterThanOrEqual(Date.parse(filter.to));
  });

  it('reads whole quarter hours from the rollups and the rest from the entries, with the same counts either way', async () => {
    const filter = { from: '2026-02-03T10:17:00.000Z', to: '2026-04-20T00:00:00.000Z' };
    app.sql.reset();
    const viaRollup = await chart({ filter, interval: 'DAY', timezone: 'Asia/Kolkata', groupBy: 'ACTION' });
    expect(app.sql.statements.some((q) => q.includes('audit_activity_by'))).toBe(true);
    // An author filter cannot use the rollup: every author, listed, must give the same counts from the entries.
    app.sql.reset();
    const direct = await chart({ filter: { ...filter, authorId: ['u1', 'u2'] }, interval: 'DAY', timezone: 'Asia/Kolkata', groupBy: 'ACTION' });
    expect(app.sql.statements.some((q) => q.includes('audit_activity'))).toBe(false);
    const noAuthor = await chart({ filter: { ...filter, search: 'zzz-no-such-thing' }, interval: 'DAY', timezone: 'Asia/Kolkata', groupBy: 'ACTION' });
    expect(noAuthor.every((b) => b.count === 0)).toBe(true);
    const [{ n: authorless }] = await app.dataSource.query(`SELECT COUNT(*) AS n FROM audit_log WHERE author_id IS NULL AND created_at >= ? AND created_at < ?`, [Date.parse(filter.from), Date.parse(filter.to)]);
    const sum = (buckets: typeof direct) => buckets.reduce((total, b) => total + b.count, 0);
    expect(sum(viaRollup)).toBe(sum(direct) + Number(authorless));
  });

  it('fills groups when groupBy is given, and they add up to each bucket', async () => {
    const filter = { from: '2026-02-01T00:00:00.000Z', to: '2026-03-01T00:00:00.000Z' };
    for (const groupBy of ['ACTION', 'RESOURCE', 'AUTHOR']) {
      const buckets = await chart({ filter, interval: 'WEEK', timezone: 'UTC', groupBy });
      for (const bucket of buckets) {
        expect(bucket.groups.reduce((sum, g) => sum + g.count, 0)).toBe(bucket.count);
        const counts = bucket.groups.map((g) => g.count);
        expect(counts).toEqual([...counts].sort((a, b) => b - a));
      }
      const keys = new Set(buckets.flatMap((b) => b.groups.map((g) => g.key)));
      expect(keys).toEqual(new Set({ ACTION: ['create', 'update', 'delete'], RESOURCE: ['posts', 'users', 'orders'], AUTHOR: ['u1', 'u2', ''] }[groupBy]));
    }
    const plain = await chart({ filter, interval: 'WEEK', timezone: 'UTC' });
    expect(plain.every((b) => b.groups.length === 0)).toBe(true);
  });

  it('defaults to the last 30 days, which then match totalCount of recent entries', async () => {
    await logEvents(app, [{ resource: 'recent', action: 'create' }, { resource: 'recent', action: 'update' }]);
    const buckets = await chart({ filter: { resource: ['recent'] } });
    expect(buckets.length).toBeGreaterThanOrEqual(30);
    expect(buckets.length).toBeLessThanOrEqual(31);
    expect(buckets.reduce((sum, b) => sum + b.count, 0)).toBe(2);
    expect(buckets.at(-1)!.count).toBeGreaterThan(0);
  });

  it.each([
    [{ timezone: 'Mars/Olympus' }, 'timezone'],
    [{ interval: 'HOUR', filter: { from: '2020-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' } }, 'interval'],
    [{ filter: { from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' } }, 'filter.from'],
  ])('refuses %o with BAD_USER_INPUT', async (variables, argument) => {
    const result = await app.gql(CHART, variables);
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument });
  });
});
