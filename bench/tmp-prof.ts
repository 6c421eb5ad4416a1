import { existsSync } from 'node:fs';
import { chainedDatabase } from './cases/chain.js';
import { verifyDatabaseFile } from '../src/cli/verify.js';
const file = '/tmp/prof-chain.sqlite';
const n = 200_000;
if (!existsSync(file)) await chainedDatabase(file, n);
await verifyDatabaseFile(file, { workers: 1 });
for (let r = 0; r < 3; r++) {
  const t = performance.now(); const c0 = process.cpuUsage();
  const [res] = await verifyDatabaseFile(file, { workers: 1 });
  const cpu = process.cpuUsage(c0);
  console.log(res!.valid, res!.checked, Math.round(n / ((performance.now() - t) / 1000)), 'per s wall', Math.round(n / ((cpu.user + cpu.system) / 1e6)), 'per CPU s');
}
