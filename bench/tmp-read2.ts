import Database from 'better-sqlite3';
import { CHAIN_BATCH_SQL } from '../src/shared/chain/rows.js';
const db = new Database('/tmp/prof-chain.sqlite', { readonly: true });
const variants: Record<string, string> = {
  full: CHAIN_BATCH_SQL,
  idonly: CHAIN_BATCH_SQL.replace(/SELECT .* FROM/, 'SELECT "id", "tenant_id", "sequence" FROM'),
  nojson: CHAIN_BATCH_SQL.replace(/"data", "previous_data", "meta", /, ''),
  count: CHAIN_BATCH_SQL.replace(/SELECT .* FROM/, 'SELECT "id", "tenant_id", "sequence", length("data")+length("previous_data")+length("user_agent") FROM'),
};
const cpu = (f: () => void) => { const c = process.cpuUsage(); f(); const u = process.cpuUsage(c); return (u.user + u.system) / 200_000; };
const mins: Record<string, number> = {};
for (let r = 0; r < 6; r++) for (const [k, sql] of Object.entries(variants)) {
  const st = db.prepare(sql).raw(true);
  const t = cpu(() => { let seq = 0, id = 0; for (;;) { const rows = st.all('default', seq, id, 1e12, 500) as unknown[][]; if (rows.length < 500) break; const l = rows[rows.length - 1]!; seq = l[2] as number; id = l[0] as number; } });
  mins[k] = Math.min(mins[k] ?? 1e9, t);
}
console.log(mins);
