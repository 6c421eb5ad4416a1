import type { DataSource } from 'typeorm';
import { DEFAULT_PERSONAL_FIELDS, nameRuleMatcher, type FieldMatcher } from '../../shared/chain/personal.js';

export interface AuditChainOptions {
  /**
   * Fields inside data, previousData and meta whose values are personal: they enter the hash only as salted
   * digests, so that they can be erased without breaking verification. Name rules (strings, matched by name
   * part; RegExps, matched whole) or a matcher. @default DEFAULT_PERSONAL_FIELDS
   */
  personalFields?: ReadonlyArray<string | RegExp> | FieldMatcher;
}

/** How one DataSource's entries are chained. */
export interface ChainSettings {
  personal: FieldMatcher;
  /** Off only in the benchmark that measures what chaining costs. */
  chained: boolean;
}

const defaults: ChainSettings = { personal: nameRuleMatcher(DEFAULT_PERSONAL_FIELDS), chained: true };
const byDataSource = new WeakMap<DataSource, ChainSettings>();

/** How the entries written through `dataSource` are chained. Entries already written keep what they recorded. */
export function configureAuditChain(dataSource: DataSource, options: AuditChainOptions): void {
  const fields = options.personalFields;
  const personal = fields === undefined ? defaults.personal : typeof fields === 'function' ? fields : nameRuleMatcher(fields);
  byDataSource.set(dataSource, { ...chainSettings(dataSource), personal });
}

export function chainSettings(dataSource: DataSource): ChainSettings {
  return byDataSource.get(dataSource) ?? defaults;
}

/**
 * For the benchmark only: writes entries without sequence or hash, to measure what the chain costs. The
 * database must not have the `audit_log_chained` trigger, which refuses such entries.
 * @internal
 */
export function disableChainForBenchmark(dataSource: DataSource): void {
  byDataSource.set(dataSource, { ...chainSettings(dataSource), chained: false });
}
