import Database from 'better-sqlite3';
import { CHAIN_BATCH_SQL, chainRowFromArray } from '../src/shared/chain/rows.js';
import { entryHash, factsText } from '../src/shared/chain/canonical.js';
const db = new Database('/tmp/prof-chain.sqlite', { readonly: true });
const st = db.prepare(CHAIN_BATCH_SQL).raw(true);
const cpu = (f: () => void) => { const c = process.cpuUsage(); f(); const u = process.cpuUsage(c); return (u.user + u.system) / 200_000; };
const readAll = (map: (r: unknown[]) => void) => { let seq = 0, id = 0; for (;;) { const rows = st.all('default', seq, id, 1e12, 500) as unknown[][]; for (const r of rows) map(r); if (rows.length < 500) break; const l = rows[rows.length - 1]!; seq = l[2] as number; id = l[0] as number; } };
for (let r = 0; r < 4; r++) {
  const read = cpu(() => readAll(() => {}));
  const conv = cpu(() => readAll((r) => chainRowFromArray(r)));
  const facts = cpu(() => readAll((r) => factsText(chainRowFromArray(r))));
  const full = cpu(() => readAll((r) => { const c = chainRowFromArray(r); entryHash(c, c.previousHash); }));
  console.log(`µs/entry: read ${read.toFixed(2)} +row ${conv.toFixed(2)} +facts(digests) ${facts.toFixed(2)} +hash ${full.toFixed(2)}`);
}
