import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ErrorCode, StorageError } from '../shared/errors.js';
import { packageRoot } from '../shared/package-root.js';
import type { Statement } from './sql.js';

/**
 * Rows a reader thread hands its row writer at a time (see streamWritten): csv-stringify costs about the
 * same per call as per row, and 20 rows are a few kilobytes of short-lived garbage.
 */
const WRITE_GROUP_ROWS = 20;

/**
 * The code each reader thread runs: one read-only connection to the database file (WAL lets it read
 * beside the writer, always a committed snapshot), prepared statements cached by text. Kept as source
 * text so that it runs the same from the compiled package and from the TypeScript sources.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
parentPort.postMessage({ ready: true });
const statements = new Map();
const cursors = new Map();
const writerModules = new Map();
function writerModule(path) {
  let loaded = writerModules.get(path);
  if (!loaded) {
    // From the TypeScript sources (inside the repository), through tsx's CommonJS hook in this thread.
    if (!path.endsWith('.js')) require('tsx/cjs/api').register();
    loaded = require(path);
    writerModules.set(path, loaded);
  }
  return loaded;
}
function openWritten(message) {
  const write = writerModule(message.writer.module).createRowWriter(message.writer.options);
  // A small page cache while the stream lasts: the file's pages stay in the OS cache, not in this process.
  // (Set before the cursor opens and reset after it ends: a connection runs no pragma beside an open cursor.)
  const cacheSize = db.pragma('cache_size', { simple: true });
  db.pragma('cache_size = ' + -message.cacheKib);
  let restored = false;
  const restore = () => {
    if (!restored) db.pragma('cache_size = ' + cacheSize);
    restored = true;
  };
  let iterator;
  try {
    iterator = db.prepare(message.sql).raw(true).iterate(...message.params);
  } catch (error) {
    restore();
    throw error;
  }
  return { iterator, write, restore, return: () => { try { iterator.return(); } finally { restore(); } } };
}
function nextWritten(cursor, maxRows, maxBytes) {
  // Each run of rows is encoded into the chunk as soon as it is written, so that its text dies young
  // instead of being kept (and promoted to the old generation) until the chunk is complete.
  let chunk = Buffer.allocUnsafeSlow(maxBytes + 65536);
  let used = 0;
  let group = [];
  let rows = 0;
  let done = false;
  const append = () => {
    const text = cursor.write(group);
    group = [];
    const length = Buffer.byteLength(text);
    if (used + length > chunk.length) {
      const larger = Buffer.allocUnsafeSlow(Math.max(chunk.length * 2, used + length));
      chunk.copy(larger, 0, 0, used);
      chunk = larger;
    }
    used += chunk.write(text, used);
  };
  while (rows < maxRows && used < maxBytes) {
    const step = cursor.iterator.next();
    if (step.done) { done = true; break; }
    group.push(step.value);
    rows++;
    if (group.length === ${WRITE_GROUP_ROWS}) append();
  }
  if (group.length > 0) append();
  if (done) cursor.restore();
  return { chunk: new Uint8Array(chunk.buffer, 0, used), count: rows, done };
}
function prepare(sql) {
  let statement = statements.get(sql);
  if (!statement) {
    if (statements.size > 256) statements.clear();
    statement = db.prepare(sql);
    statements.set(sql, statement);
  }
  return statement;
}
function fail(id, error) {
  parentPort.postMessage({ id, error: { message: String(error && error.message), code: error && error.code } });
}
parentPort.on('message', (message) => {
  const { id, kind } = message;
  try {
    if (kind === 'all') {
      parentPort.postMessage({ id, rows: prepare(message.sql).all(...message.params) });
    } else if (kind === 'open') {
      cursors.set(id, message.writer ? openWritten(message) : db.prepare(message.sql).iterate(...message.params));
      parentPort.postMessage({ id, opened: true });
    } else if (kind === 'next' && message.bytes !== undefined) {
      const reply = nextWritten(cursors.get(id), message.size, message.bytes);
      if (reply.done) cursors.delete(id);
      parentPort.postMessage({ id, ...reply }, [reply.chunk.buffer]);
    } else if (kind === 'next') {
      const cursor = cursors.get(id);
      const rows = [];
      let done = false;
      while (rows.length < message.size) {
        const step = cursor.next();
        if (step.done) { done = true; break; }
        rows.push(step.value);
      }
      if (done) cursors.delete(id);
      parentPort.postMessage({ id, rows, done });
    } else if (kind === 'close') {
      const cursor = cursors.get(id);
      cursors.delete(id);
      if (cursor) cursor.return();
      parentPort.postMessage({ id, closed: true });
    }
  } catch (error) {
    const cursor = cursors.get(id);
    cursors.delete(id);
    if (cursor && cursor.restore) cursor.restore();
    fail(id, error);
  }
});
`;

export interface ReadPoolOptions {
  /** The SQLite file the readers open (read-only). */
  file: string;
  /** Reader threads. @default 2 */
  workers: number;
  /** Longest one read may take, queueing included, before it is cancelled with QUERY_TIMEOUT. */
  timeoutMs: number;
  /**
   * Reads of one principal that may run at once; the rest of its reads wait their turn. Kept below the
   * number of readers, so that one credential can never hold every reader. @default workers - 1
   */
  perPrincipal: number;
  /** Reads of one principal that may wait; past that they are refused at once with RATE_LIMITED. @default 16 */
  waitingPerPrincipal: number;
}

export interface ReadOptions {
  /** Who asks (tenant + principal); their concurrent reads are capped. Internal reads pass none. */
  principal?: string;
  /** Overrides the pool's time budget (e.g. longer for an export's batches). */
  timeoutMs?: number;
}

type Reply = { rows?: Record<string, unknown>[]; chunk?: Uint8Array; count?: number; done?: boolean; error?: { message: string; code?: string } };

/**
 * What turns rows into text on the reader thread: a module it loads (a compiled `.js` file, or a TypeScript
 * source inside the repository) whose `createRowWriter(options)` returns a function from rows (arrays of
 * column values, in the statement's order) to text. It is called with runs of consecutive rows, in order.
 */
export interface RowWriterModule {
  module: string;
  /** Handed to `createRowWriter`; structured-cloneable. */
  options: unknown;
}

/** How much one message from the reader thread holds, at most (the bytes may be passed by the last row). */
export interface WrittenBatch {
  rows: number;
  /** Bytes of UTF-8 text (the last run of rows may pass it). */
  bytes: number;
  /** The reader's SQLite page cache while the stream lasts, in KiB. */
  cacheKib: number;
}

/** Text written on the reader thread (UTF-8), and how many rows it holds. */
export interface WrittenChunk {
  text: Uint8Array;
  rows: number;
}

interface Job {
  message: { kind: 'all' | 'open' | 'next' | 'close'; sql?: string; params?: unknown[]; size?: number; bytes?: number; writer?: RowWriterModule; cacheKib?: number };
  resolve(reply: Reply): void;
  reject(error: unknown): void;
  /** A streaming read keeps its reader until it is closed. */
  stream?: number;
  timer?: NodeJS.Timeout;
  principal?: string;
}

interface Reader {
  worker: Worker;
  /** Its connection is open: it can take work without keeping anyone waiting for its start. */
  ready: boolean;
  busy?: { job: Job; id: number };
  /** The stream that holds this reader between batches. */
  heldBy?: number;
}

export function queryTimeout(ms: number): StorageError {
  return new StorageError(`The read took longer than ${ms} ms and was cancelled; narrow the filter or ask for fewer entries`, ErrorCode.QueryTimeout);
}

/**
 * Reads run on a small pool of worker threads, each with its own read-only connection, so that a heavy
 * query (a count over millions of entries, a wide chart) never blocks the event loop: health checks,
 * writes and every other tenant's requests keep being answered. better-sqlite3 cannot interrupt a
 * running statement, so a read past its time budget is cancelled by terminating its thread; a fresh one
 * takes its place.
 */
export class ReadPool {
  private readonly readers: Reader[] = [];
  private readonly queue: Job[] = [];
  /** Per principal: reads running, and reads queued or running. */
  private readonly running = new Map<string, number>();
  private readonly pending = new Map<string, number>();
  private nextId = 1;
  private closed = false;
  private readonly driver: string;

  constructor(private readonly options: ReadPoolOptions) {
    this.driver = createRequire(join(packageRoot(), 'package.json')).resolve('better-sqlite3');
    // One spare beyond `workers`: when a read past its budget costs a thread, the spare takes over at
    // once while a new one starts (a thread needs a moment to load the driver and open the file).
    for (let i = 0; i <= options.workers; i++) this.readers.push(this.spawn());
  }

  private spawn(): Reader {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver: this.driver, file: this.options.file, busyTimeoutMs: 5000 },
      // Everything a reader allocates per row dies young: a small young generation is collected often
      // instead of growing to tens of megabytes of resident memory per thread during a long stream.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    const reader: Reader = { worker, ready: false };
    worker.unref();
    worker.on('message', (reply: Reply & { id: number; ready?: boolean }) => {
      if (reply.ready) {
        reader.ready = true;
        this.dispatch();
        return;
      }
      const busy = reader.busy;
      if (!busy || busy.id !== reply.id) return;
      reader.busy = undefined;
      clearTimeout(busy.job.timer);
      this.finish(busy.job);
      if (reply.error) busy.job.reject(readError(reply.error));
      else busy.job.resolve(reply);
      this.dispatch();
    });
    worker.on('error', (error) => this.replace(reader, error));
    worker.on('exit', () => {
      if (!this.closed && this.readers.includes(reader)) this.replace(reader, new Error('reader thread exited'));
    });
    return reader;
  }

  /** A reader died or was terminated: fail what it was doing, start another. */
  private replace(reader: Reader, error: unknown): void {
    const index = this.readers.indexOf(reader);
    if (index === -1) return;
    const busy = reader.busy;
    reader.busy = undefined;
    this.readers.splice(index, 1);
    void reader.worker.terminate();
    if (busy) {
      clearTimeout(busy.job.timer);
      this.finish(busy.job);
      busy.job.reject(error);
    }
    if (!this.closed) {
      this.readers.push(this.spawn());
      this.dispatch();
    }
  }

  /** A job of a principal left the pool (answered, failed or expired), after running or not. */
  private finish(job: Job, ran = true): void {
    if (job.principal === undefined) return;
    if (ran) count(this.running, job.principal, -1);
    count(this.pending, job.principal, -1);
  }

  private dispatch(): void {
    let busy = this.readers.filter((r) => r.busy || r.heldBy !== undefined).length;
    for (let i = 0; i < this.queue.length; i++) {
      const job = this.queue[i]!;
      const held = job.stream !== undefined && job.message.kind !== 'open';
      // Oldest first, skipping principals that already run as many reads as they may.
      if (!held && job.principal !== undefined && (this.running.get(job.principal) ?? 0) >= this.options.perPrincipal) continue;
      if (!held && busy >= this.options.workers) break;
      const reader = held ? this.readers.find((r) => r.heldBy === job.stream && !r.busy) : this.readers.find((r) => r.ready && !r.busy && r.heldBy === undefined);
      if (!reader) continue;
      if (!held) busy++;
      if (job.principal !== undefined) count(this.running, job.principal, 1);
      // A stream keeps the reader that opened its cursor until the stream ends.
      if (job.message.kind === 'open') reader.heldBy = job.stream;
      this.queue.splice(i--, 1);
      const id = job.stream ?? this.nextId++;
      reader.busy = { job, id };
      reader.worker.postMessage({ id, ...job.message });
    }
  }

  private submit(message: Job['message'], options: ReadOptions, stream?: number): Promise<Reply> {
    if (this.closed) return Promise.reject(new StorageError('The server is shutting down', ErrorCode.StorageUnavailable));
    // Only whole reads (and a stream's opening) count against the caller; a stream's later batches do not.
    const principal = message.kind === 'all' || message.kind === 'open' ? options.principal : undefined;
    if (principal !== undefined) {
      if ((this.pending.get(principal) ?? 0) >= this.options.waitingPerPrincipal) {
        return Promise.reject(
          new StorageError(`Too many reads at once from one caller (at most ${this.options.waitingPerPrincipal} waiting); retry shortly`, ErrorCode.RateLimited, { retryAfterMs: 100 }),
        );
      }
      count(this.pending, principal, 1);
    }
    return new Promise<Reply>((resolve, reject) => {
      const job: Job = { message, resolve, reject, stream, principal };
      const budget = options.timeoutMs ?? this.options.timeoutMs;
      job.timer = setTimeout(() => this.expire(job, budget), budget);
      job.timer.unref();
      this.queue.push(job);
      this.dispatch();
    });
  }

  /** Past its budget: a queued read leaves the queue, a running one loses its thread. */
  private expire(job: Job, budget: number): void {
    const queued = this.queue.indexOf(job);
    if (queued !== -1) {
      this.queue.splice(queued, 1);
      this.finish(job, false);
      job.reject(queryTimeout(budget));
      return;
    }
    const reader = this.readers.find((r) => r.busy?.job === job);
    if (reader) this.replace(reader, queryTimeout(budget));
  }

  async all<Row = Record<string, unknown>>(statement: Statement, options: ReadOptions = {}): Promise<Row[]> {
    const reply = await this.submit({ kind: 'all', sql: statement.sql, params: [...statement.params] }, options);
    return (reply.rows ?? []) as Row[];
  }

  /**
   * Rows of one statement in batches of `size`, read only as the consumer asks for them, so that memory
   * stays flat however many rows there are. The stream holds one reader until it ends or is returned.
   */
  async *stream<Row = Record<string, unknown>>(statement: Statement, size: number, options: ReadOptions = {}): AsyncGenerator<Row[]> {
    const id = this.nextId++;
    let done = false;
    try {
      await this.submit({ kind: 'open', sql: statement.sql, params: [...statement.params] }, options, id);
      while (!done) {
        const reply = await this.submit({ kind: 'next', size }, { ...options, principal: undefined }, id);
        done = reply.done === true;
        if (reply.rows && reply.rows.length > 0) yield reply.rows as Row[];
      }
    } finally {
      const reader = this.readers.find((r) => r.heldBy === id);
      if (reader) {
        if (!done) await this.submit({ kind: 'close' }, {}, id).catch(() => undefined);
        reader.heldBy = undefined;
        this.dispatch();
      }
    }
  }

  /**
   * The rows of one statement as text written on the reader thread by `writer`, in chunks of at most
   * `batch.rows` rows or about `batch.bytes` of text: the server receives bytes to send, not an object per
   * row to turn into text itself. One chunk is read ahead while the consumer takes the last one (so the
   * reader writes while the server sends); nothing more until the consumer asks. Raw rows (arrays) are
   * handed to the writer. The stream holds one reader until it ends or is returned.
   */
  async *streamWritten(statement: Statement, writer: RowWriterModule, batch: WrittenBatch, options: ReadOptions = {}): AsyncGenerator<WrittenChunk> {
    const id = this.nextId++;
    const next = () => this.submit({ kind: 'next', size: batch.rows, bytes: batch.bytes }, { ...options, principal: undefined }, id);
    let done = false;
    let ahead: Promise<Reply> | undefined;
    try {
      await this.submit({ kind: 'open', sql: statement.sql, params: [...statement.params], writer, cacheKib: batch.cacheKib }, options, id);
      ahead = next();
      while (!done) {
        const reply = await ahead!;
        ahead = undefined;
        done = reply.done === true;
        if (!done) ahead = next();
        if (reply.chunk && reply.count) yield { text: reply.chunk, rows: reply.count };
      }
    } finally {
      if (ahead) {
        // A chunk read ahead that nobody takes: wait for it, so that the cursor is closed after it.
        const reply = await ahead.catch(() => undefined);
        if (reply?.done) done = true;
      }
      const reader = this.readers.find((r) => r.heldBy === id);
      if (reader) {
        if (!done) await this.submit({ kind: 'close' }, {}, id).catch(() => undefined);
        reader.heldBy = undefined;
        this.dispatch();
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) {
      clearTimeout(job.timer);
      job.reject(new StorageError('The server is shutting down', ErrorCode.StorageUnavailable));
    }
    await Promise.all(this.readers.splice(0).map((reader) => reader.worker.terminate()));
  }
}

function count(counts: Map<string, number>, key: string, delta: number): void {
  const next = (counts.get(key) ?? 0) + delta;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
}

function readError(error: { message: string; code?: string }): Error {
  const failure = new Error(error.message) as Error & { code?: string };
  failure.code = error.code;
  return failure;
}
