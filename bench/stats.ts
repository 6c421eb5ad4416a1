/** Medians and spreads: the machines are shared and noisy, so no single run is trusted. */
export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** `min–max`, with as many decimals as the values need. */
export function range(values: number[]): string {
  const digits = (v: number) => (Math.abs(v) >= 100 ? 0 : 2);
  const min = Math.min(...values);
  const max = Math.max(...values);
  return `${min.toFixed(digits(min))}–${max.toFixed(digits(max))}`;
}

/** The scale factor: `--scale` or BENCH_SCALE (default 1), so that a quick look or a CI smoke run stays small. */
export function scale(): number {
  const factor = Number(process.env.BENCH_SCALE ?? '1');
  return Number.isFinite(factor) && factor > 0 ? factor : 1;
}

export function scaled(n: number): number {
  return Math.max(1, Math.round(n * scale()));
}

/** A measurement of one side in one round: a number (lower or higher is better, as the case says). */
export type Measure = () => Promise<number>;

export interface Interleaved {
  /** One value per measured round, in round order. */
  ours: number[];
  baseline: number[];
  /** ours ÷ baseline, round by round (the two were measured back to back, under the same neighbours). */
  ratios: number[];
  median: { ours: number; baseline: number; ratio: number };
  /** The ratio's range over the rounds, `min–max`. */
  spread: string;
}

export const MIN_ROUNDS = 5;

/**
 * Runs both sides round by round, alternating which goes first (A B, B A, A B, …, so that neither always
 * follows the other into a warm or cold cache), after `warmup` unmeasured rounds of each. Both sides are
 * therefore warm, measured the same number of times, and under the same load from the rest of the
 * machine; the ratio is taken per round and its median reported with its range.
 */
export async function interleave(options: { ours: Measure; baseline: Measure; rounds?: number; warmup?: number }): Promise<Interleaved> {
  const rounds = Math.max(MIN_ROUNDS, options.rounds ?? MIN_ROUNDS);
  for (let i = 0; i < (options.warmup ?? 1); i++) {
    await options.baseline();
    await options.ours();
  }
  const ours: number[] = [];
  const baseline: number[] = [];
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      baseline.push(await options.baseline());
      ours.push(await options.ours());
    } else {
      ours.push(await options.ours());
      baseline.push(await options.baseline());
    }
  }
  const ratios = ours.map((v, i) => v / baseline[i]!);
  return { ours, baseline, ratios, median: { ours: median(ours), baseline: median(baseline), ratio: median(ratios) }, spread: range(ratios) };
}

/** Times one call, in ms. */
export async function time(fn: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/**
 * One row of the table. `target` is the goal, `value` + `metric` what was measured, `spread` the range
 * of the ratio (or of the value, without a baseline) over the rounds.
 */
export interface CaseResult {
  case: string;
  metric: string;
  value: number;
  baseline: number | null;
  ratio: number | null;
  target: string;
  met: boolean | null;
  detail: string;
  spread?: string;
}
