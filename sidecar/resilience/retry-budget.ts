// A retry budget per target: retries may add at most `ratio` of the requests plus `perSecond` a second,
// so a failing target never sees a retry storm (the shape Linkerd and Envoy use).
export class RetryBudget {
  readonly #ratio: number;
  readonly #perSecond: number;
  #tokens: number;
  #last = Date.now();

  constructor(ratio = 0.2, perSecond = 10) {
    this.#ratio = ratio;
    this.#perSecond = perSecond;
    this.#tokens = perSecond;
  }

  /** Every request deposits `ratio` of a retry. */
  onRequest(): void {
    this.#refill();
    this.#tokens = Math.min(this.#tokens + this.#ratio, this.#cap());
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryWithdraw(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #refill(): void {
    const now = Date.now();
    this.#tokens = Math.min(this.#tokens + ((now - this.#last) / 1000) * this.#perSecond, this.#cap());
    this.#last = now;
  }

  #cap(): number {
    return Math.max(this.#perSecond, 10);
  }
}

/** Full jitter: a random wait between 0 and min(cap, base × 2^attempt). */
export function fullJitter(attempt: number, baseMs = 25, capMs = 1000): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}
