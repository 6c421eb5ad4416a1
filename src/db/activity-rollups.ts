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
