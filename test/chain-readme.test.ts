import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainRowFromExport, verifyExportFile } from '../src/cli/verify.js';
import { entryHash, factsText, groupSalt, personalDigest, saltFor } from '../src/shared/chain/canonical.js';
import { parsePointer, valueAt } from '../src/shared/chain/pointer.js';
import { LOG_EVENT, signToken, startTestApp, type TestApp } from './helpers/test-app.js';

const root = resolve(__dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const between = (name: string) => {
  const block = new RegExp(`<!-- ${name}:start -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\`\`\`\\n<!-- ${name}:end -->`).exec(readme);
  if (!block) throw new Error(`README has no ${name} block`);
  return block[1]!;
};

// The script runs from a folder inside node_modules/.cache, so that `import 'canonicalize'` resolves as it
// would for someone who installed it.
const scratch = join(root, 'node_modules', '.cache');
mkdirSync(scratch, { recursive: true });
const dir = mkdtempSync(join(scratch, 'auditql-readme-'));
const script = join(dir, 'verify-export.mjs');
writeFileSync(script, between('chain-script'));
const run = (file: string) => spawnSync(process.execPath, [script, file], { encoding: 'utf8' });

let app: TestApp;
beforeAll(async () => {
  // Reads of the log are recorded (hash version 2 for a filter that names a person).
  app = await startTestApp({ evidence: { metaAudit: { mode: 'all', windowMs: 0 } } });
  const acme = await signToken({ sub: 'acme-writer', name: 'Carla Acme', scope: 'audit:write', tenant: 'acme' });
  for (let i = 0; i < 6; i++) {
    const input = { resource: 'customers', action: 'update', resourceId: String(i), data: { email: `p${i}@example.com`, contacts: [{ phone: '+1 555 0100' }], 'a/b~c': { firstName: 'Ann' } }, previousData: { note: 'é😀\u2028', n: 1e21 }, meta: { z: 1, a: [true, null] } };
    await app.gql(LOG_EVENT, { input }, { 'user-agent': `agent/${i}` });
    await app.gql(LOG_EVENT, { input: { resource: 'orders', action: 'create', data: { total: i / 3 } } }, { authorization: `Bearer ${acme}` });
  }
  await app.gql('mutation { renameLog(id: "2", name: "renamed") { id } }');
  await app.gql('{ auditLogs(filter: { authorId: ["u-17", "u-18"], search: "Carla" }) { totalCount } }', {}, { 'user-agent': 'reader/1' });
  // Committed in order: the read's record is in once this is.
  await app.gql(LOG_EVENT, { input: { resource: 'marker', action: 'x' } });
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Every entry of both tenants, from the real export endpoint (each tenant exports its own). */
async function exportLines(): Promise<Array<Record<string, unknown>>> {
  const acmeReader = await signToken({ sub: 'acme-reader', scope: 'audit:read', tenant: 'acme' });
  const download = async (token: string) => {
    const response = await fetch(app.url.replace('/graphql', '/export?format=ndjson'), { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    return (await response.text()).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
  };
  return [...(await download(acmeReader)), ...(await download(app.adminKey))];
}
const write = (name: string, lines: Array<Record<string, unknown>>) => {
  const file = join(dir, name);
  writeFileSync(file, lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
  return file;
};

describe("the README's canonical form", () => {
  it('reproduces the worked example byte for byte', () => {
    const example = JSON.parse(between('chain-example')) as Record<string, unknown>;
    const row = chainRowFromExport(example);
    const shown = /one line, (\d+) bytes\):\n\n {3}```\n {3}(.*)\n/.exec(readme)!;
    expect(factsText(row)).toBe(shown[2]);
    expect(Buffer.byteLength(shown[2]!)).toBe(Number(shown[1]));
    expect(entryHash(row, row.previousHash)).toBe(example.hash);
    expect(readme).toContain(personalDigest(row.salt!, '/authorName', 'Ann Example'));
    expect(readme).toContain(`\`groupSalt("actor")\` = \`${groupSalt(row.salt!, 'actor')}\``);
    expect(readme).toContain(`\`groupSalt("content")\` =\n\`${groupSalt(row.salt!, 'content')}\``);
  });

  it("its script verifies a real export, also after erasure, and finds a changed line", async () => {
    const lines = await exportLines();
    expect(new Set(lines.map((l) => l.tenantId))).toEqual(new Set(['default', 'acme']));
    expect(lines.some((l) => (l.personalPaths as string[]).includes('/data/a~1b~0c/firstName'))).toBe(true);
    expect(lines.filter((l) => l.hashVersion === 2).map((l) => l.personalPaths)).toContainEqual(['/authorId', '/authorName', '/ip', '/meta/filter/authorId', '/meta/filter/search', '/userAgent']);
    const valid = run(write('export.ndjson', lines));
    expect(valid.stdout.trim()).toBe('valid');
    expect(valid.status).toBe(0);
    expect((await verifyExportFile(join(dir, 'export.ndjson'))).map((r) => [r.tenant, r.valid])).toEqual([['acme', true], ['default', true]]);

    // Erasure as specified: values and salt go, digests stay.
    // `only`: erase only these pointers (version 2: the values inside JSON), keeping the others' group salt.
    const erase = (only?: (pointer: string) => boolean) =>
      lines.map((line) => {
        if (!line.salt) return line;
        const row = chainRowFromExport(line);
        const pointers = (line.personalPaths as string[]).filter((pointer) => !only || only(pointer));
        if (pointers.length === 0) return line;
        const copy = JSON.parse(JSON.stringify(line)) as Record<string, any>;
        const digests: Record<string, string> = {};
        for (const pointer of pointers) {
          const segments = parsePointer(pointer);
          digests[pointer] = personalDigest(saltFor(row, pointer)!, pointer, valueAt(copy, segments)!);
          const parent = valueAt(copy, segments.slice(0, -1)) as Record<string, unknown>;
          parent[segments.at(-1)!] = segments.length === 1 ? null : '[ERASED]';
        }
        const kept = pointers.length < (line.personalPaths as string[]).length ? groupSalt(copy.salt, 'actor') : null;
        return { ...copy, salt: kept, erasedDigests: digests };
      });
    const erasedFile = write('erased.ndjson', erase());
    expect(readFileSync(erasedFile, 'utf8')).not.toMatch(/example\.com|Carla|agent\/|reader\/1|u-17|555 0100|127\.0\.0\.1/);
    expect(run(erasedFile).stdout.trim()).toBe('valid');
    expect((await verifyExportFile(erasedFile)).every((r) => r.valid)).toBe(true);
    // Version 2 with only the filter's values erased: the reader's values stay, verified with their own salt.
    const partly = erase((pointer) => pointer.startsWith('/meta/filter/'));
    const partlyFile = write('partly.ndjson', partly.filter((line, i) => line !== lines[i] || line.hashVersion === 1));
    expect(readFileSync(partlyFile, 'utf8')).toContain('reader/1');
    expect(readFileSync(partlyFile, 'utf8')).not.toContain('u-17');
    expect(run(write('partly-all.ndjson', partly)).stdout.trim()).toBe('valid');
    expect((await verifyExportFile(join(dir, 'partly-all.ndjson'))).every((r) => r.valid)).toBe(true);

    const changed = lines.map((line, i) => (i === 3 ? { ...line, action: 'delete' } : line));
    const broken = run(write('changed.ndjson', changed));
    expect(broken.status).toBe(1);
    expect(broken.stdout).toContain(`${lines[3]!.tenantId} ${lines[3]!.sequence}: broken`);
  });
});
