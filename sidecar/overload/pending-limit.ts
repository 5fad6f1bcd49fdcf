// The calling sidecar's bound on calls waiting for one target (limits.pendingPerTarget): beyond it a call
// is refused at once with 503 + Retry-After, so a saturated target cannot make this sidecar's memory grow.
import { MeshError } from '../../sdk/errors.ts';

export class PendingLimit {
  readonly #max: number;
  readonly #pending = new Map<string, number>();
  readonly #rejected = new Map<string, number>();

  constructor(max: number) {
    this.#max = max;
  }

  /** Counts one call to `target`; throws OVERLOADED when `max` are already pending. Pair with release(). */
  acquire(target: string): void {
    const n = this.#pending.get(target) ?? 0;
    if (n >= this.#max) {
      this.#rejected.set(target, (this.#rejected.get(target) ?? 0) + 1);
      throw new MeshError('OVERLOADED', `${n} calls to '${target}' are already pending at this sidecar (limits.pendingPerTarget ${this.#max}); try again later`, {
        retryAfterMs: 1000, details: { target, reason: 'pending' },
      });
    }
    this.#pending.set(target, n + 1);
  }

  /** Counts the call until `res` closes (not at all when it already has: the caller is gone). */
  hold(target: string, res: { destroyed: boolean; once(event: 'close', listener: () => void): unknown }): void {
    if (res.destroyed) return;
    this.acquire(target);
    res.once('close', () => this.release(target));
  }

  release(target: string): void {
    const n = (this.#pending.get(target) ?? 1) - 1;
    if (n <= 0) this.#pending.delete(target);
    else this.#pending.set(target, n);
  }

  snapshot(): { max: number; pending: Record<string, number>; rejected: Record<string, number> } {
    return { max: this.#max, pending: Object.fromEntries(this.#pending), rejected: Object.fromEntries(this.#rejected) };
  }
}
