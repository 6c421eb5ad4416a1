import { benchDatabase } from './dataset.js';

/**
 * `npm run bench:dataset -- 10000000`: builds (or finds) the cached benchmark database of that many entries
 * (scaled by BENCH_SCALE) ahead of a run, and prints where it is.
 */
const base = Number(process.argv[2] ?? 1_000_000);
if (!Number.isInteger(base) || base < 1) throw new Error('usage: bench:dataset [entries]');
const began = Date.now();
const made = await benchDatabase(Date.UTC(2026, 10, 1), base);
console.log(`${made.rows.toLocaleString('en')} entries in ${made.file} (${((Date.now() - began) / 1000).toFixed(0)} s)`);
