import { describe, expect, it } from 'vitest';
import { EXPORT_COLUMNS, exportLine, exportRecord, exportRowWriter } from '../src/services/export-lines.js';

/** A stored row as the reader thread reads it: values in EXPORT_COLUMNS order, JSON columns as compact JSON text. */
function row(values: Record<string, unknown>): unknown[] {
  return EXPORT_COLUMNS.map((column) => (column in values ? values[column] : null));
}

const HOSTILE = ['"quoted"', 'back\\slash', 'line\nbreak', 'tab\tcr\r', '\u0000\u001f', 'é ü 中文 🎉', '\ud800 lone', '=SUM(A1)', ''];

const rows = [
  row({ id: 1, tenant_id: 't', sequence: 1, hash: 'a'.repeat(64), previous_hash: '0'.repeat(64), hash_version: 1, personal_paths: '[]', created_at: 1767225600000, resource: 'orders', action: 'create' }),
  ...HOSTILE.map((text, i) =>
    row({
      id: 100 + i, name: text, tenant_id: `t${text}`, sequence: 2 + i, hash: 'b'.repeat(64), previous_hash: 'a'.repeat(64), hash_version: 1,
      salt: 'c'.repeat(32), personal_paths: JSON.stringify(['/authorName', `/data/${text}`]), erased_digests: JSON.stringify({ '/ip': 'd'.repeat(64) }),
      // Every column its own value, so that reading one column's place for another's shows.
      created_at: 1767225600000 + i, resource: `r${text}`, resource_id: `ri${text}`, action: `a${text}`, author_id: `ai${text}`, author_name: `an${text}`, author_type: `at${text}`,
      data: JSON.stringify({ [text]: text, n: -7.5e-7, big: 2 ** 53, nested: [null, true, { x: text }] }), previous_data: JSON.stringify(`pd${text}`), meta: JSON.stringify([`m${text}`]),
      ip: `ip${text}`, user_agent: `ua${text}`, transaction_id: `tx${text}`, idempotency_key: `ik${text}`, redacted_changes: JSON.stringify([`rc${text}`]), recorded_by: `rb${text}`,
    }),
  ),
];

describe('export lines', () => {
  it('write each entry exactly as JSON.stringify writes its export record (the fast line reads columns by position)', () => {
    for (const r of rows) expect(exportLine(r)).toBe(JSON.stringify(exportRecord(r)));
  });

  it('write NDJSON and JSON the same whether rows come in one run or one by one', () => {
    for (const format of ['ndjson', 'json', 'csv'] as const) {
      const whole = exportRowWriter(format)(rows);
      const single = exportRowWriter(format);
      expect(rows.map((r) => single([r])).join('')).toBe(whole);
    }
  });
});
