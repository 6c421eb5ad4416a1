import { mkdirSync, writeFileSync } from 'node:fs';
import { auditedWrites } from './cases/audited-writes.js';
import { bulkSave } from './cases/bulk-save.js';
import { chart } from './cases/chart.js';
import { list } from './cases/list.js';
import { search } from './cases/search.js';
import { ingest } from './cases/ingest.js';
import { burst, fanOut } from './cases/fan-out.js';
import { postgresChart, postgresFanOut, postgresIngest, postgresList } from './cases/postgres.js';
import { chainVerify, chainWrites } from './cases/chain.js';
import { exportCase } from './cases/export.js';
import type { CaseResult } from './stats.js';

/**
 * `npm run bench`: every case, each against a baseline measured in the same run. `BENCH_CASE=name` runs
 * one case, `BENCH_SCALE=0.1` shrinks them for a quick look.
 */
const cases: Record<string, () => Promise<CaseResult[]>> = {
  'audited-writes': auditedWrites,
  'bulk-save': bulkSave,
  ingest,
  list,
  search,
  chart,
  'fan-out': fanOut,
  burst,
  'pg-ingest': postgresIngest,
  'pg-list': postgresList,
  'pg-chart': postgresChart,
  'pg-fan-out': postgresFanOut,
  'chain-writes': chainWrites,
  'chain-verify': chainVerify,
  export: exportCase,
};

const only = process.env.BENCH_CASE;
const results: CaseResult[] = [];
for (const [name, run] of Object.entries(cases)) {
  if (only && only !== name) continue;
  console.error(`running ${name} …`);
  results.push(...(await run()));
}

const fmt = (v: number | null) => (v === null ? '—' : v.toFixed(Math.abs(v) < 100 ? 2 : 0));
const rows = results.map((r) => [r.case, `${fmt(r.value)} ${r.metric}`, fmt(r.baseline), r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`, r.target, r.met === null ? '—' : r.met ? 'met' : 'NOT met', r.detail]);
const header = ['case', 'result', 'baseline', 'ratio', 'target', 'status', 'detail'];
console.log(`| ${header.join(' | ')} |\n| ${header.map(() => '---').join(' | ')} |`);
for (const row of rows) console.log(`| ${row.join(' | ')} |`);

// The smoke run (CI) only proves that every case still runs and produces numbers; it keeps latest.json, and
// so does a run of one case or at another scale (partial.json): latest.json holds the last full run.
const smoke = process.argv.includes('--smoke');
const partial = !smoke && (only !== undefined || (process.env.BENCH_SCALE ?? '1') !== '1');
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL(smoke ? './results/smoke.json' : partial ? './results/partial.json' : './results/latest.json', import.meta.url),
  `${JSON.stringify({ at: new Date().toISOString(), node: process.version, scale: process.env.BENCH_SCALE ?? '1', results }, null, 2)}\n`,
);
const broken = results.filter((r) => !Number.isFinite(r.value));
if (smoke && (results.length < Object.keys(cases).length || broken.length > 0)) {
  console.error(`benchmark smoke run failed: ${broken.map((r) => r.case).join(', ') || 'a case produced no result'}`);
  process.exitCode = 1;
}
