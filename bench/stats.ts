// Latency statistics for the benchmark: percentiles read from the sorted samples (nearest rank, as an
// HDR histogram reports them), and small helpers to combine and compare them. Pure; no I/O.

export interface Summary {
  n: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? Number.NaN;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = Float64Array.from(samples).sort();
  const list = Array.from(sorted);
  let sum = 0;
  for (const v of list) sum += v;
  return {
    n: list.length,
    min: list[0] ?? Number.NaN,
    mean: list.length ? sum / list.length : Number.NaN,
    p50: percentile(list, 50),
    p90: percentile(list, 90),
    p99: percentile(list, 99),
    max: list.at(-1) ?? Number.NaN,
  };
}

/** `a - b` per percentile: what a proxy pair adds over the direct path. */
export function added(pair: Summary, direct: Summary): { p50: number; p90: number; p99: number } {
  return { p50: pair.p50 - direct.p50, p90: pair.p90 - direct.p90, p99: pair.p99 - direct.p99 };
}

export function median(values: readonly number[]): number {
  return percentile([...values].sort((x, y) => x - y), 50);
}

export function ratio(a: number, b: number): number {
  return b === 0 || !Number.isFinite(a) || !Number.isFinite(b) ? Number.NaN : a / b;
}
