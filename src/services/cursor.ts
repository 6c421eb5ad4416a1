import { badUserInput, notFound } from '../shared/errors.js';

/**
 * A position in the log: (createdAt, id). Entries are written in commit order with a non-decreasing
 * createdAt and an increasing id, so this key orders them exactly as they were committed.
 */
export interface LogPosition {
  createdAt: number;
  id: number;
}

const PREFIX = 'al1:';

export function encodeCursor(position: LogPosition): string {
  return Buffer.from(`${PREFIX}${position.createdAt}:${position.id}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, argument = 'cursor'): LogPosition {
  const text = /^[A-Za-z0-9_-]{1,64}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const match = /^al1:(\d{1,15}):(\d{1,15})$/.exec(text);
  if (!match) throw badUserInput(`"${argument}" is not a valid cursor`, argument);
  return { createdAt: Number(match[1]), id: Number(match[2]) };
}

export function positionOf(entry: { createdAt: Date; id: number }): LogPosition {
  return { createdAt: entry.createdAt.getTime(), id: entry.id };
}

export function comparePositions(a: LogPosition, b: LogPosition): number {
  return a.createdAt - b.createdAt || a.id - b.id;
}

/** Entry ids are opaque strings to clients; anything that is not one of ours is simply not found. */
export function parseEntryId(id: string): number {
  if (!/^[1-9]\d{0,15}$/.test(id)) throw notFound(`No audit log entry with id "${id}"`);
  return Number(id);
}
