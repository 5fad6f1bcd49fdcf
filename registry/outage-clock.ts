// The view's clock for staleness: wall-clock time that stands still while the registry is unreachable,
// since no owner can heartbeat then. Records age only while the view could have seen their heartbeats.

const MAX_OUTAGES = 64;

interface Outage {
  start: number;
  end: number;
  /** Total outage time before `start` (never rebased, so values cached by callers stay comparable). */
  pausedBefore: number;
}

export class OutageClock {
  readonly #closed: Outage[] = [];
  #paused = 0;
  #openSince: number | undefined;

  /**
   * Marks the start (false) or end (true) of an outage at `now`. An outage learnt of late may start in
   * the past, though never before the end of the one before it. Repeated calls are ignored.
   */
  setConnected(connected: boolean, now = Date.now()): void {
    if (!connected) {
      this.#openSince ??= Math.max(now, this.#closed.at(-1)?.end ?? now);
      return;
    }
    if (this.#openSince === undefined) return;
    this.#closed.push({ start: this.#openSince, end: now, pausedBefore: this.#paused });
    this.#paused += now - this.#openSince;
    this.#openSince = undefined;
    if (this.#closed.length > MAX_OUTAGES) this.#closed.shift();
  }

  /** Virtual time at wall-clock `t`: `t` minus all outage time up to `t`. */
  at(t: number): number {
    return t - this.#pausedUntil(t);
  }

  now(): number {
    return this.at(Date.now());
  }

  #pausedUntil(t: number): number {
    if (this.#openSince !== undefined && t >= this.#openSince) return this.#paused + (t - this.#openSince);
    for (let i = this.#closed.length - 1; i >= 0; i--) {
      const o = this.#closed[i];
      if (!o) break;
      if (t >= o.end) return o.pausedBefore + (o.end - o.start);
      if (t >= o.start) return o.pausedBefore + (t - o.start);
    }
    // Before every outage still remembered (older ones are dropped; their total is kept).
    return this.#closed[0]?.pausedBefore ?? this.#paused;
  }
}
