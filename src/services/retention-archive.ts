/**
 * Archives of removed entries (README, "Retention"): one gzip-compressed NDJSON file per run of consecutive
 * entries of one tenant, written, fsynced and renamed into place before any of its entries is deleted.
 *
 *   line 1      {"format":"auditql-archive","version":1,"tenant":…,"fromSequence":…,"createdAt":…,"publicKey":{keyId,pem}}
 *   line 2      {"checkpoint":"start",…}   the anchor the first entry chains from (absent when it is the genesis)
 *   lines …     one entry each, in the export line format (src/shared/chain/rows.ts, chainExportFields), plus id and name
 *   last line   {"checkpoint":"end","count":…,…}   the signed checkpoint at the last entry of the file
 *
 * Checkpoint records carry {tenant, sequence, hash, createdAt, keyId, jws}, as GET /checkpoints does.
 */
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { publicKeyPem, type CheckpointKey, type SignedCheckpoint } from '../shared/chain/checkpoint.js';
import { ARCHIVE_FORMAT, type ArchiveHeader } from '../shared/chain/archive.js';

/** The file name of an archive: sortable by tenant and range, readable by people. */
export function archiveFileName(tenant: string, fromSequence: number, toSequence: number): string {
  const pad = (n: number) => String(n).padStart(12, '0');
  return `auditql-${encodeURIComponent(tenant)}-${pad(fromSequence)}-${pad(toSequence)}.ndjson.gz`;
}

/** Unfinished files: an archive being written (`.partial`), an archive being rewritten by an erasure (`.erasing`). */
const TEMPORARY = /\.(\d+)\.\d+\.(partial|erasing)$/;

/**
 * Removes the unfinished files that a process killed while writing them left in `dir` (a purge or an
 * erasure of this machine: their names carry the writer's process id, which no longer runs). They hold
 * copies of entries, personal values included, that no archive lists and no erasure reaches; the entries
 * themselves are still in the table, or in the finished file. Files of a writer still running are kept.
 */
export async function removeStaleTemporaries(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = TEMPORARY.exec(name)?.[1];
    if (pid === undefined || isRunning(Number(pid))) continue;
    await rm(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ArchiveWriter {
  /** Appends lines (each one JSON value, without the newline). */
  write(lines: string[]): Promise<void>;
  /**
   * Ends the file with its end checkpoint, flushes it to disk (fsync of the file, then of the folder after the
   * rename) and returns its final path. Only then may the entries in it be deleted.
   */
  finish(end: SignedCheckpoint, count: number): Promise<string>;
  /** Removes the unfinished file. */
  abandon(): Promise<void>;
}

export async function openArchive(dir: string, key: CheckpointKey, tenant: string, fromSequence: number, start: SignedCheckpoint | { sequence: number; hash: string } | null): Promise<ArchiveWriter> {
  await mkdir(dir, { recursive: true });
  const temporary = join(dir, `.${archiveFileName(tenant, fromSequence, 0)}.${process.pid}.${Date.now()}.partial`);
  const header: ArchiveHeader = { format: ARCHIVE_FORMAT, version: 1, tenant, fromSequence, createdAt: Date.now(), publicKey: { keyId: key.keyId, pem: publicKeyPem(key.publicKey) } };
  // A pushed stream feeding gzip, which feeds the file: backpressure through `write`'s promise.
  let wake: (() => void) | undefined;
  const source = new Readable({
    read() {
      wake?.();
      wake = undefined;
    },
  });
  const done = pipeline(source, createGzip(), createWriteStream(temporary, { mode: 0o600 }));
  done.catch(() => undefined);
  const push = (text: string) => (source.push(text) ? Promise.resolve() : new Promise<void>((resolve) => (wake = resolve)));
  await push(`${JSON.stringify(header)}\n`);
  if (start) await push(`${JSON.stringify({ checkpoint: 'start', tenant, ...start })}\n`);
  return {
    async write(lines) {
      if (lines.length > 0) await push(`${lines.join('\n')}\n`);
    },
    async finish(end, count) {
      source.push(`${JSON.stringify({ checkpoint: 'end', count, ...end })}\n`);
      source.push(null);
      await done;
      const handle = await open(temporary, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      const path = join(dir, archiveFileName(tenant, fromSequence, end.sequence));
      await rename(temporary, path);
      // The rename itself must survive a crash before the entries are deleted: fsync the folder.
      const folder = await open(dir, 'r');
      try {
        await folder.sync();
      } finally {
        await folder.close();
      }
      return path;
    },
    async abandon() {
      source.destroy();
      await done.catch(() => undefined);
      await rm(temporary, { force: true });
    },
  };
}
