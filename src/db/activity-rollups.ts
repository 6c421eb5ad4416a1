/**
 * How the per-column rollups key an entry: `created_at - created_at % unit` (ms), per table and column.
 * The triggers that keep them (migration 1763800000320), the counts that read them (rollup-count.ts) and
 * the purge that drops their empty rows (retention.ts) agree through this one table.
 */
export const ROLLUP_UNITS = {
  /** Actions per quarter hour (zones with 30- and 45-minute offsets), resources per hour. */
  audit_activity_by: { action: 900_000, resource: 3_600_000 },
  audit_activity_daily_by: { action: 86_400_000, resource: 86_400_000 },
} as const;

export type RollupColumn = 'action' | 'resource';
export type PerColumnRollup = keyof typeof ROLLUP_UNITS;

/** What an entry contributes to the rollups (an entry itself will do). */
export interface CountedEntry {
  tenantId: string;
  createdAt: Date;
  action: string;
  resource: string;
}

/** Counts per key of one rollup table; the key's columns in the table's order, the count last. */
type Counts = Map<string, Array<string | number>>;

function count(counts: Counts, tenantId: string, time: number, a: string, b: string): Array<string | number> {
  const key = `${tenantId}\u0000${time}\u0000${a}\u0000${b}`;
  let row = counts.get(key);
  if (!row) counts.set(key, (row = [tenantId, time, a, b, 0]));
  return row;
}

const ROWS_PER_UPSERT = 100;
const upserts = new Map<string, string>();

/** `INSERT … VALUES (…) × rows ON CONFLICT … entries + excluded.entries`, kept per table and row count. */
function upsert(table: string, columns: readonly string[], rows: number): string {
  const memo = `${table}:${rows}`;
  let sql = upserts.get(memo);
  if (!sql) {
    const key = columns.slice(0, 4).map((column) => `"${column}"`).join(', ');
    const tuple = `(${columns.map(() => '?').join(', ')})`;
    sql =
      `INSERT INTO "${table}" (${columns.map((column) => `"${column}"`).join(', ')}) VALUES ${Array.from({ length: rows }, () => tuple).join(', ')} ` +
      `ON CONFLICT (${key}) DO UPDATE SET "entries" = "entries" + excluded."entries"`;
    if (upserts.size >= 64) upserts.clear();
    upserts.set(memo, sql);
  }
  return sql;
}

const TABLES = [
  ['audit_activity_by', ['tenant_id', 'start', 'dimension', 'value', 'entries']],
  ['audit_activity_daily_by', ['tenant_id', 'day', 'dimension', 'value', 'entries']],
  ['audit_activity_daily', ['tenant_id', 'day', 'action', 'resource', 'entries']],
] as const;

/** `audit_activity_daily`'s unit: the UTC day (migration 1763800000201). */
const DAY_MS = 86_400_000;

/**
 * The SQLite upserts that add `entries` to the rollups: each table's distinct keys with their counts, in
 * one statement per table (per 100 keys). On SQLite the writer counts its entries itself, in the
 * transaction that inserts them (migration 1763800000330): the per-row triggers did five upserts per entry
 * (2.1 µs of SQLite per entry, measured). Deletes are still counted by triggers; PostgreSQL counts inserts
 * by statement-level triggers.
 */
export function rollupIncrements(entries: readonly CountedEntry[]): Array<{ sql: string; params: Array<string | number> }> {
  const tables: Counts[] = [new Map(), new Map(), new Map()];
  const [by, dailyBy, daily] = tables as [Counts, Counts, Counts];
  const units = ROLLUP_UNITS.audit_activity_by;
  const dailyUnits = ROLLUP_UNITS.audit_activity_daily_by;
  let previous: CountedEntry | undefined;
  let previousQuarter = 0;
  let rows: Array<Array<string | number>> = [];
  for (const entry of entries) {
    const { tenantId, action, resource } = entry;
    const createdAt = entry.createdAt.getTime();
    const quarter = createdAt - (createdAt % units.action);
    // A bulk write's entries mostly share every key with the one before: count them without building keys.
    const same = previous !== undefined && previous.tenantId === tenantId && previous.action === action && previous.resource === resource && previousQuarter === quarter;
    if (!same) {
      rows = [
        count(by, tenantId, quarter, 'action', action),
        count(by, tenantId, createdAt - (createdAt % units.resource), 'resource', resource),
        count(dailyBy, tenantId, createdAt - (createdAt % dailyUnits.action), 'action', action),
        count(dailyBy, tenantId, createdAt - (createdAt % dailyUnits.resource), 'resource', resource),
        count(daily, tenantId, createdAt - (createdAt % DAY_MS), action, resource),
      ];
    }
    for (const row of rows) (row[4] as number)++;
    previous = entry;
    previousQuarter = quarter;
  }
  const statements: Array<{ sql: string; params: Array<string | number> }> = [];
  tables.forEach((counts, t) => {
    const [table, columns] = TABLES[t]!;
    const all = [...counts.values()];
    for (let start = 0; start < all.length; start += ROWS_PER_UPSERT) {
      const chunk = all.slice(start, start + ROWS_PER_UPSERT);
      statements.push({ sql: upsert(table, columns, chunk.length), params: chunk.flat() });
    }
  });
  return statements;
}
