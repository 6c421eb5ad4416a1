import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';
import { SignJWT } from 'jose';
import { benchDatabase } from '../dataset.js';
import { median, scaled, type CaseResult } from '../stats.js';

const SECRET = 'bench-secret-that-is-long-enough-for-hs256!';
const ROUNDS = 3;

/** VmRSS and VmHWM (the peak since start, or since the last reset) of a process, in bytes. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Resets a process's peak RSS to its current RSS (Linux: "5" to clear_refs); false where it is not allowed. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * `GET /export?format=ndjson` of the whole bench data set (1M entries at scale 1) over HTTP, from `auditql serve`
 * (the compiled package; `npm run build` first) in its own process: rows per second as the client receives them (reading and discarding), and the server's
 * peak RSS during the export (VmHWM, reset before each round). Baseline, in the same run and interleaved:
 * the same rows read with one raw better-sqlite3 iterate and JSON.stringify, written to /dev/null.
 */
export async function exportCase(): Promise<CaseResult[]> {
  const { file, rows } = await benchDatabase(Date.UTC(2026, 10, 1));
  // The server as deployed (`auditql serve`, compiled), alone in its process so that its memory is its own;
  // no meta-audit, so that the data set stays as it is.
  const child = spawn(process.execPath, ['dist/cjs/cli.js', 'serve'], {
    env: { ...process.env, NODE_ENV: '', PORT: '0', HOST: '127.0.0.1', DATABASE_URL: file, JWT_SECRET: SECRET, META_AUDIT: 'off' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk;
      const match = /listening on http:\/\/[^:\s]+:(\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`the export server exited with ${code}: ${out}`)));
  });
  const token = await new SignJWT({ sub: 'bench', scope: 'audit:read', tenant: 'default' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(SECRET));

  const overHttp = async () => {
    const started = process.hrtime.bigint();
    const response = await fetch(`http://127.0.0.1:${port}/export?format=ndjson`, { headers: { authorization: `Bearer ${token}` } });
    if (response.status !== 200) throw new Error(`export answered ${response.status}: ${await response.text()}`);
    let lines = 0;
    for await (const chunk of response.body! as unknown as AsyncIterable<Uint8Array>) {
      for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
    }
    return { rows: lines, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  };

  const raw = new Database(file, { readonly: true });
  const all = raw.prepare(`SELECT * FROM audit_log WHERE tenant_id = 'default' ORDER BY created_at, id`);
  const rawExport = () => {
    const started = process.hrtime.bigint();
    const out = openSync('/dev/null', 'w');
    let count = 0;
    let buffer = '';
    for (const row of all.iterate()) {
      buffer += `${JSON.stringify(row)}\n`;
      count++;
      if (buffer.length > 65536) {
        writeSync(out, buffer);
        buffer = '';
      }
    }
    writeSync(out, buffer);
    closeSync(out);
    return { rows: count, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  };

  const ours: number[] = [];
  const baseline: number[] = [];
  const peaks: number[] = [];
  let idle = 0;
  let coldIdle = 0;
  let coldPeak = 0;
  let peakReset = true;
  try {
    // Warm both sides (the server's first export also starts its reader threads' statements); the first
    // export's peak is reported too: it is what a server that exports once a day sees.
    coldIdle = memoryOf(child.pid!).rss;
    peakReset = resetPeak(child.pid!) && peakReset;
    await overHttp();
    coldPeak = memoryOf(child.pid!).peak;
    rawExport();
    for (let round = 0; round < ROUNDS; round++) {
      idle = memoryOf(child.pid!).rss;
      peakReset = resetPeak(child.pid!) && peakReset;
      const exported = await overHttp();
      if (exported.rows !== rows) throw new Error(`the export gave ${exported.rows} rows of ${rows}`);
      peaks.push(memoryOf(child.pid!).peak);
      ours.push(exported.rows / exported.seconds);
      const read = rawExport();
      baseline.push(read.rows / read.seconds);
    }
  } finally {
    raw.close();
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  const rate = median(ours);
  const rawRate = median(baseline);
  const peak = Math.max(...peaks) / 2 ** 20;
  const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
  return [
    {
      case: `export NDJSON over HTTP (${rows.toLocaleString('en')} entries)`,
      metric: 'rows/s',
      value: rate,
      baseline: rawRate,
      ratio: rate / rawRate,
      target: '≥ 50,000 rows/s',
      met: rate >= 50_000,
      detail: `median of ${ROUNDS}; baseline: raw better-sqlite3 iterate + JSON.stringify to /dev/null in this process`,
    },
    {
      case: `export / server memory (${rows.toLocaleString('en')} entries)`,
      metric: 'MB peak RSS',
      value: peak,
      baseline: null,
      ratio: null,
      target: 'peak RSS ≤ 200 MB',
      met: peak <= 200,
      detail:
        `the server process's VmHWM during each export${peakReset ? ' (reset before each)' : ' (since start: reset not allowed)'}, highest of ${ROUNDS} ` +
        `(${peaks.map(mb).join(', ')}); ${mb(idle)} MB before the last; first export of the server (cold): ${mb(coldPeak)} MB, ${mb(coldIdle)} MB before it`,
    },
  ];
}
