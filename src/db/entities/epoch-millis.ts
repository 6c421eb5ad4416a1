import type { ValueTransformer } from 'typeorm';

/**
 * Timestamps are stored as integer milliseconds since the epoch: exact to the millisecond on every
 * driver, cheap to compare, and the same bytes in SQLite and PostgreSQL (`bigint`).
 */
export const epochMillis: ValueTransformer = {
  to: (value: Date | null | undefined) => (value == null ? value : value.getTime()),
  from: (value: number | string | null) => (value === null ? null : new Date(Number(value))),
};
