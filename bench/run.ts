import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { auditedWrites } from './cases/audited-writes.js';
import { bulkSave } from './cases/bulk-save.js';
import { chart } from './cases/chart.js';
import { list } from './cases/list.js';
import { search } from './cases/search.js';
import { ingest } from './cases/ingest.js';
import { burst, fanOut } from './cases/fan-out.js';
import { postgresChart, postgresFanOut, postgresIngest, postgresList } from './cases/postgres.js';
import { chainVerify, chainWrites } from './cases/chain.js';
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
};

