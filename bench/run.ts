import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { auditedWrites } from './cases/audited-writes.js';
import { bulkSave } from './cases/bulk-save.js';
import { chart } from './cases/chart.js';
import { list } from './cases/list.js';
import { search } from './cases/search.js';
import { totalCount } from './cases/total-count.js';
import { ingest, ingestJwt, logEventsBatch } from './cases/ingest.js';
import { burst, fanOut } from './cases/fan-out.js';
import { wsMemory } from './cases/ws-memory.js';
import { postgresChart, postgresFanOut, postgresIngest, postgresList } from './cases/postgres.js';
import { chainVerify, chainWrites } from './cases/chain.js';
import { availability } from './cases/availability.js';
import { erasure } from './cases/erasure.js';
import { purge } from './cases/purge.js';
import { storage } from './cases/storage.js';
import { chart10m, count10m, list10m, search10m } from './cases/ten-million.js';
import { exportCase } from './cases/export.js';
import type { CaseResult } from './stats.js';

/**
 * `npm run bench`: every case, each against a baseline measured in the same run, both sides warm and
 * interleaved round by round (stats.ts `interleave`). Options:
 *   --case <name>[,<name>…]  only these cases (or BENCH_CASE)
 *   --scale <factor>         shrink (or grow) every case (or BENCH_SCALE; the smoke run uses 0.01)
 *   --smoke                  CI: fail when a case produces no figure
 *   --list                   print the case names
 */
const cases: Record<string, () => Promise<CaseResult[]>> = {
  'audited-writes': auditedWrites,
  'bulk-save': bulkSave,
  ingest,
  'ingest-jwt': ingestJwt,
  'log-events': logEventsBatch,
  list,
  search,
  'total-count': totalCount,
  chart,
  'fan-out': fanOut,
  burst,
  'ws-memory': wsMemory,
  'pg-ingest': postgresIngest,
  'pg-list': postgresList,
  'pg-chart': postgresChart,
  'pg-fan-out': postgresFanOut,
  'chain-writes': chainWrites,
  'chain-verify': chainVerify,
  availability,
  erasure,
  purge,
  storage,
  'list-10m': list10m,
  'count-10m': count10m,
  'chart-10m': chart10m,
  'search-10m': search10m,
  export: exportCase,
};


const { values: args } = parseArgs({
  options: { case: { type: 'string', multiple: true }, scale: { type: 'string' }, smoke: { type: 'boolean' }, list: { type: 'boolean' } },
});
if (args.list) {
  console.log(Object.keys(cases).join('\n'));
  process.exit(0);
}
if (args.scale !== undefined) {
  if (!(Number(args.scale) > 0)) throw new Error(`--scale takes a positive number, not "${args.scale}"`);
  process.env.BENCH_SCALE = args.scale;
}
const wanted = (args.case ?? (process.env.BENCH_CASE ? [process.env.BENCH_CASE] : [])).flatMap((c) => c.split(',')).map((c) => c.trim()).filter(Boolean);
const unknown = wanted.filter((name) => !(name in cases));
if (unknown.length > 0) throw new Error(`no such case: ${unknown.join(', ')} (npm run bench -- --list)`);
const only = wanted.length > 0 ? wanted : undefined;

const results: CaseResult[] = [];
for (const [name, run] of Object.entries(cases)) {
  if (only && !only.includes(name)) continue;
  console.error(`running ${name} …`);
  const started = Date.now();
  try {
    results.push(...(await run()));
  } catch (error) {
    console.error(`${name} failed:`, error);
    results.push({ case: name, metric: '', value: Number.NaN, baseline: null, ratio: null, target: '—', met: false, detail: `failed: ${(error as Error).message}` });
  }
  console.error(`${name} took ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

const fmt = (v: number | null) => (v === null ? '—' : !Number.isFinite(v) ? 'failed' : v.toFixed(Math.abs(v) < 100 ? 2 : 0));
const header = ['case', 'goal', 'measured', 'baseline', 'ratio', 'spread', 'met', 'detail'];
console.log(`| ${header.join(' | ')} |\n| ${header.map(() => '---').join(' | ')} |`);
for (const r of results) {
  const row = [r.case, r.target, `${fmt(r.value)} ${r.metric}`, fmt(r.baseline), r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`, r.spread ?? '—', r.met === null ? '—' : r.met ? 'met' : 'NOT met', r.detail];
  console.log(`| ${row.map((cell) => cell.replace(/\|/g, '\\|')).join(' | ')} |`);
}

// The smoke run (CI) only proves that every case still runs and produces numbers; it keeps latest.json, and
// so does a run of one case or at another scale (partial.json): latest.json holds the last full run.
const smoke = args.smoke === true;
const scale = process.env.BENCH_SCALE ?? '1';
const partial = !smoke && (only !== undefined || scale !== '1');
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL(smoke ? './results/smoke.json' : partial ? './results/partial.json' : './results/latest.json', import.meta.url),
  `${JSON.stringify({ at: new Date().toISOString(), node: process.version, scale, results }, null, 2)}\n`,
);
const broken = results.filter((r) => !Number.isFinite(r.value));
if (broken.length > 0) console.error(`no figure from: ${broken.map((r) => r.case).join(', ')}`);
if (smoke && (results.length < Object.keys(cases).length || broken.length > 0)) {
  console.error('benchmark smoke run failed');
  process.exitCode = 1;
}
