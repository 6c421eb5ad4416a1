/**
 * The archive format retention writes before it deletes (README, "Retention", "Archives"): NDJSON, one
 * header line, an optional start checkpoint, entry lines in the export format, an end checkpoint. What a
 * line is, decided by its members, so a reader needs nothing else.
 */
import { createReadStream } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { SignedCheckpoint } from './checkpoint.js';

/** The lines of an NDJSON file (an export or an archive), gunzipped when its name ends in `.gz`. */
export function ndjsonLines(path: string): Interface {
  const input = createReadStream(path);
  return createInterface({ input: path.endsWith('.gz') ? input.pipe(createGunzip()) : input, crlfDelay: Infinity });
}

export const ARCHIVE_FORMAT = 'auditql-archive';

export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  version: 1;
  tenant: string;
  /** The sequence of the first entry in the file. */
  fromSequence: number;
  /** Epoch milliseconds. */
  createdAt: number;
  /** The key the checkpoints in the file were signed with (check its id against the server's published key). */
  publicKey: { keyId: string; pem: string };
}

/** `start`: the anchor the file's first entry chains from; `end`: the signed checkpoint at its last entry. */
export type ArchiveCheckpoint = { checkpoint: 'start' | 'end'; count?: number } & (SignedCheckpoint | { tenant: string; sequence: number; hash: string; jws?: undefined });

export type ArchiveLine = { kind: 'header'; header: ArchiveHeader } | { kind: 'checkpoint'; checkpoint: ArchiveCheckpoint } | { kind: 'entry'; entry: Record<string, unknown> };

export function classifyLine(value: Record<string, unknown>): ArchiveLine {
  if (value.format === ARCHIVE_FORMAT) return { kind: 'header', header: value as unknown as ArchiveHeader };
  if (value.checkpoint === 'start' || value.checkpoint === 'end') return { kind: 'checkpoint', checkpoint: value as unknown as ArchiveCheckpoint };
  return { kind: 'entry', entry: value };
}
