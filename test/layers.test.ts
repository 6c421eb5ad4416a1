import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..');

/** Runs the project's dependency-cruiser rules (.dependency-cruiser.cjs) over `src` of `dir`. */
function violations(dir = root): string[] {
  const run = spawnSync(resolve(root, 'node_modules/.bin/depcruise'), ['src', '--config', resolve(root, '.dependency-cruiser.cjs'), '--output-type', 'json'], {
    cwd: dir,
    encoding: 'utf8',
  });
  const result = JSON.parse(run.stdout) as { summary: { violations: Array<{ rule: { name: string }; from: string; to: string }> } };
  return result.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
}

describe('the import graph', () => {
  it('has no arrow from a lower layer to a higher one, and no cycle', () => {
    expect(violations()).toEqual([]);
  });

  it('would catch one (db importing the server)', () => {
    expect(violations(resolve(root, 'test/fixtures/layers'))).toEqual(['db-must-not-import-server: src/db/bad.ts → src/server/yoga.ts']);
  });
});
