import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * auditql as users get it: `npm pack`, then the tarball installed into apps nobody here wrote — an ES
 * module app, a CommonJS app, a NestJS app on TypeORM 0.3 — each compiled by its own TypeScript with its
 * own settings (skipLibCheck off) and run with plain `node`, no TypeScript loader.
 */
const repo = resolve(__dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'auditql-package-'));
let tarball = '';

const run = (command: string, args: string[], cwd: string) => execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], cwd);

beforeAll(() => {
  const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', work], repo)) as Array<{ filename: string }>;
  tarball = join(work, packed[0]!.filename);
  // One install that the ESM and CJS apps share (Node looks for packages in parent folders), as users would install it.
  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'apps', private: true }));
  npm(['install', tarball, 'typeorm@^1.1.1', 'better-sqlite3@^12', 'reflect-metadata', 'typescript@~5.9.0', '@types/node@^20'], work);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the packed package', () => {
  it('holds the compiled code, its types, the README, the license and the schema, and nothing of the repository', () => {
    const files = run('tar', ['tzf', tarball], work).trim().split('\n');
    const outside = files.filter((file) => !file.startsWith('package/dist/'));
    expect(outside.sort()).toEqual(['package/LICENSE', 'package/README.md', 'package/package.json', 'package/schema.graphql']);
    expect(files).toContain('package/dist/cjs/index.js');
    expect(files).toContain('package/dist/cjs/index.d.ts');
    expect(files).toContain('package/dist/esm/index.mjs');
    expect(files.some((file) => /test|bench|\.ci/.test(file.replace('package/dist/', '')))).toBe(false);
  });

  it('has types that resolve under node10, node16 (CJS and ESM) and bundler for the root and every sub-path', () => {
    const attw = spawnSync(join(repo, 'node_modules/.bin/attw'), [tarball, '--format', 'json'], { encoding: 'utf8' });
    const report = JSON.parse(attw.stdout) as { analysis: { problems: unknown[] } };
    expect(report.analysis.problems).toEqual([]);
  });

  it("type-checks under an app's own settings with skipLibCheck off, whatever its module resolution", () => {
    const dir = join(work, 'types');
    cpSync(join(repo, 'test/package/apps/types'), dir, { recursive: true });
    for (const config of readdirSync(dir).filter((file) => file.startsWith('tsconfig.'))) {
      const checked = spawnSync(process.execPath, [join(work, 'node_modules/typescript/bin/tsc'), '-p', config], { cwd: dir, encoding: 'utf8' });
      expect(checked.stdout + checked.stderr, config).toBe('');
    }
  });

  it.each(['esm', 'cjs'])('audits an entity save in a fresh %s app, with no TypeScript loader and no global touched', (kind) => {
    const dir = join(work, kind);
    cpSync(join(repo, 'test/package/apps', kind), dir, { recursive: true });
    run(process.execPath, [join(work, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], dir);
    const printed = JSON.parse(run(process.execPath, ['dist/main.js'], dir)) as Record<string, unknown>;
    expect(printed).toMatchObject({ action: 'create', author: kind === 'esm' ? 'u1' : 'u2', server: 'function', urlPattern: 'undefined' });
    expect(printed.data).toMatchObject({ title: kind === 'esm' ? 'Dune' : 'Emma' });
    if (kind === 'esm') expect(printed.sameSubscriber).toBe(true);
    else expect(printed.required).toBe('function');
  });

  it('runs the CLI: `auditql --help` lists the commands', () => {
    const help = run(join(work, 'node_modules/.bin/auditql'), ['--help'], work);
    for (const command of ['serve', 'migrate', 'apikey']) expect(help).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
  });

  it('audits a NestJS app (CommonJS, TypeORM 0.3, @nestjs/typeorm) with the actor set by a middleware', () => {
    const dir = join(work, 'nest');
    cpSync(join(repo, 'examples/nest'), dir, { recursive: true, filter: (source) => !/node_modules|dist/.test(source.slice(repo.length)) });
    npm(['install', tarball], dir);
    npm(['run', 'build'], dir);
    const printed = JSON.parse(run(process.execPath, ['dist/main.js'], dir)) as Record<string, unknown>;
    expect(printed).toMatchObject({ action: 'create', author: 'u42', authorName: 'Lin', data: { text: 'hello' } });
  });
});
