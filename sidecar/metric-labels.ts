// Label spellings the metrics share across directions: targets as `agent/x` and `mcp/x` (the resilience
// keys), and bounded labels (the caller). Methods come from the request context (a2a/methods.ts).
import type { Target } from './request-context.ts';

/** The metrics spelling of a target, the same as the resilience keys: `agent/{name}` or `mcp/{name}`. */
export function targetLabel(target: Target): string {
  return `${target.kind}/${target.name}`;
}

/** At most `max` distinct values of a label (first come), then 'other': a caller cannot grow the series. */
export class BoundedLabel {
  readonly #seen = new Set<string>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  of(value: string): string {
    if (this.#seen.has(value)) return value;
    if (this.#seen.size >= this.#max) return 'other';
    this.#seen.add(value);
    return value;
  }
}
