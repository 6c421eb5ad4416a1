/**
 * Erasure in the retention archives (README, "Erasure"): an archive holds removed entries as they were
 * when archived, personal values and salts included. Each file that holds entries of the erased author is
 * rewritten with those entries erased exactly as in the live table (eraseRow: values and salt gone, their
 * digests kept), which changes no hash, so the file's signed checkpoints and its place in the chain stay
 * valid. A file is rewritten beside itself, fsynced and renamed over the old one: a crash leaves the old
 * file or the new one, never half of either; the erasure can simply run again.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { classifyLine, ndjsonLines } from '../shared/chain/archive.js';
import type { ChainRow } from '../shared/chain/canonical.js';
import { eraseRow, type ErasedColumns } from '../shared/chain/erase.js';
import { chainRowFromExport } from '../shared/chain/export-row.js';
import { chainExportFields } from '../shared/chain/rows.js';
import { withArchiveFolderLock } from './archive-folder-lock.js';
import { concernsOthers, othersEraser, type OthersTarget } from './erasure-others.js';
import { removeStaleTemporaries } from './retention-archive.js';

export interface ArchiveErasure {
  /** Archive files rewritten. */
  files: number;
  /** Entries erased in them. */
  entries: number;
}

/** How one archived entry is erased: the author's entries whole, others' entries that name them in part. */
type Eraser = (row: ChainRow) => ErasedColumns | null;

/** The eraser of an author: their entries (eraseRow), and with `others` the others' entries that name them. */
function eraserOf(authorId: string, pseudonym: string, others?: OthersTarget): Eraser {
  const inOthers = others && othersEraser(others);
  return (row) => {
    if (row.authorId === authorId) return eraseRow(row, pseudonym);
    return inOthers?.(row)?.columns ?? null;
  };
}

/** Whether the eraser has anything to do for an archived entry (without computing it). */
function concerns(entry: Record<string, unknown>, authorId: string, others: OthersTarget | undefined): boolean {
  return entry.authorId === authorId || (others !== undefined && concernsOthers(entry, others));
}

/** The line of an archived entry with its personal values erased, or null when it has none left. */
function erasedLine(entry: Record<string, unknown>, erase: Eraser): Record<string, unknown> | null {
  const erased = erase(chainRowFromExport(entry));
  if (!erased) return null;
  const json = (text: string | null) => (text === null ? null : (JSON.parse(text) as unknown));
  return {
    ...entry,
    authorId: erased.authorId,
    authorName: erased.authorName,
    ip: erased.ip,
    userAgent: erased.userAgent,
    data: json(erased.data),
    previousData: json(erased.previousData),
    meta: json(erased.meta),
    salt: erased.salt,
    erasedDigests: erased.erasedDigests,
  };
}

async function fsync(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Whether the archive is one of `tenant`'s and holds an entry of the author: a read-only pass first. */
async function holdsAuthor(path: string, tenant: string, authorId: string, others: OthersTarget | undefined): Promise<boolean> {
  const lines = ndjsonLines(path);
  try {
    for await (const text of lines) {
      if (text.trim() === '') continue;
      const line = classifyLine(JSON.parse(text) as Record<string, unknown>);
      if (line.kind === 'header' && line.header.tenant !== tenant) return false;
      if (line.kind === 'entry' && concerns(line.entry, authorId, others)) return true;
    }
    return false;
  } finally {
    lines.close();
  }
}

/**
 * Rewrites one archive with the author's entries erased, line by line (an archive holds up to 100,000
 * entries: it is streamed, not held in memory); the number erased (0: the file is left as it was).
 */
async function eraseInFile(path: string, tenant: string, authorId: string, pseudonym: string, others: OthersTarget | undefined): Promise<number> {
  if (!(await holdsAuthor(path, tenant, authorId, others))) return 0;
  const erase = eraserOf(authorId, pseudonym, others);
  return rewriteFile(path, (entry) => (concerns(entry, authorId, others) ? erasedLine(entry, erase) : null));
}

/**
 * Rewrites an archive beside itself with each entry line that `replace` answers for replaced, fsynced and
 * renamed over the old file; the number replaced.
 */
async function rewriteFile(path: string, replace: (entry: Record<string, unknown>) => Record<string, unknown> | null): Promise<number> {
  let erased = 0;
  async function* rewritten() {
    for await (const text of ndjsonLines(path)) {
      if (text.trim() === '') continue;
      const line = classifyLine(JSON.parse(text) as Record<string, unknown>);
      const replaced = line.kind === 'entry' ? replace(line.entry) : null;
      if (replaced) erased++;
      yield `${replaced ? JSON.stringify(replaced) : text}\n`;
    }
  }
  const temporary = `${path}.${process.pid}.${Date.now()}.erasing`;
  try {
    const body = Readable.from(rewritten());
    await (path.endsWith('.gz') ? pipeline(body, createGzip(), createWriteStream(temporary, { mode: 0o600 })) : pipeline(body, createWriteStream(temporary, { mode: 0o600 })));
    await fsync(temporary);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return erased;
}

/**
 * Puts entries as they are now into the archive `path` in `dir` in place of their lines (a purge's own
 * archive, for entries erased further after it wrote them): their hashes are the same, so the file's
 * checkpoints stay valid. Holds the folder's lock; the number of lines replaced.
 */
export async function replaceArchivedEntries(dir: string, path: string, rows: readonly ChainRow[], onWait?: () => void): Promise<number> {
  const bySequence = new Map(rows.map((row) => [row.sequence, row]));
  return withArchiveFolderLock(
    dir,
    async () => {
      const replaced = await rewriteFile(path, (entry) => {
        const row = bySequence.get(Number(entry.sequence));
        return row === undefined ? null : { ...entry, ...chainExportFields(row) };
      });
      if (replaced > 0) await fsync(dir);
      return replaced;
    },
    onWait,
  );
}

/**
 * Erases an author's personal values in every archive of `tenant` in `dir` (`*.ndjson.gz`, `*.ndjson`),
 * holding the folder's lock (archive-folder-lock.ts); `onWait` is called when another process holds it.
 */
export async function eraseInArchives(
  dir: string,
  tenant: string,
  authorId: string,
  pseudonym: string,
  onWait?: () => void,
  others?: OthersTarget,
): Promise<ArchiveErasure> {
  if (!existsSync(dir)) return { files: 0, entries: 0 };
  return withArchiveFolderLock(dir, () => eraseInFolder(dir, tenant, authorId, pseudonym, others), onWait);
}

async function eraseInFolder(dir: string, tenant: string, authorId: string, pseudonym: string, others: OthersTarget | undefined): Promise<ArchiveErasure> {
  // Copies left by a purge or an erasure killed midway would keep the values this one erases.
  await removeStaleTemporaries(dir);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => /\.ndjson(\.gz)?$/.test(name)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { files: 0, entries: 0 };
    throw error;
  }
  const result: ArchiveErasure = { files: 0, entries: 0 };
  for (const name of names) {
    const erased = await eraseInFile(join(dir, name), tenant, authorId, pseudonym, others);
    if (erased > 0) {
      result.files++;
      result.entries += erased;
    }
  }
  // The renames survive a crash only once the folder is on disk too.
  if (result.files > 0) await fsync(dir);
  return result;
}
