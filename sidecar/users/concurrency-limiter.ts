// In-flight calls per (limit, caller, target) for the policy's `limits` with `concurrency`, counted at the
// receiving sidecar from admission until the response closes (a stream counts while it stays open). A
// call over a limit is refused with RATE_LIMITED (429, Retry-After) and takes no slot of any limit.
import { MeshError } from '../../sdk/errors.ts';
import type { Target } from '../request-context.ts';

export interface ConcurrencyLimit {
  /** Names the limit in errors; also keeps counts of different limits apart. */
  name: string;
  concurrency: number;
}

export type ConcurrencyFor = (caller: string, target: Target, user: unknown) => readonly ConcurrencyLimit[];

/** Retry-After for a call refused by a concurrency limit: a slot frees when a call ends, which nobody can predict. */
export const CONCURRENCY_RETRY_AFTER_MS = 1000;

export class ConcurrencyLimiter {
  readonly #limitsFor: ConcurrencyFor;
  /** In-flight calls per `limit\ncaller\nkind/name`; a key at zero is removed. */
  readonly #inFlight = new Map<string, number>();

  constructor(limitsFor: ConcurrencyFor) {
    this.#limitsFor = limitsFor;
  }

  /**
   * Takes one slot of every limit that applies and returns the (idempotent) release, or undefined when no
   * limit applies; throws RATE_LIMITED, taking nothing, when the caller already has `concurrency` calls in flight.
   */
  acquire(caller: string, target: Target, user?: unknown): (() => void) | undefined {
    const limits = this.#limitsFor(caller, target, user);
    if (limits.length === 0) return undefined;
    const keys = limits.map((limit) => `${limit.name}\n${caller}\n${target.kind}/${target.name}`);
    limits.forEach((limit, i) => {
      const inFlight = this.#inFlight.get(keys[i] ?? '') ?? 0;
      if (inFlight < limit.concurrency) return;
      throw new MeshError('RATE_LIMITED', `${caller} already has ${inFlight} calls in flight to ${target.kind === 'agent' ? 'agent' : 'MCP server'} '${target.name}' (limit '${limit.name}': concurrency ${limit.concurrency}); retry when one of them has finished`, {
        retryAfterMs: CONCURRENCY_RETRY_AFTER_MS, details: { limit: limit.name },
      });
    });
    for (const key of keys) this.#inFlight.set(key, (this.#inFlight.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const key of keys) {
        const left = (this.#inFlight.get(key) ?? 1) - 1;
        if (left > 0) this.#inFlight.set(key, left);
        else this.#inFlight.delete(key);
      }
    };
  }

  /** Calls in flight under limits (for tests and /api/state). */
  inFlight(): number {
    let total = 0;
    for (const n of this.#inFlight.values()) total += n;
    return total;
  }
}
