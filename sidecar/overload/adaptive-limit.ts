// How many calls the local agent handles well at once, learned from its latency (a gradient limit in the
// manner of Netflix's concurrency-limits): grows while latency stays near its baseline, shrinks when it
// rises or calls time out. Pure arithmetic on samples; it admits nothing itself.

export interface AdaptiveLimitSettings {
  initial: number;
  min: number;
  max: number;
}

/** Latency up to this multiple of the baseline counts as "near" it: the limit may still grow. */
const TOLERANCE = 2;
/**
 * ...and so does latency up to this much (ms) above it. An agent that answers in microseconds would
 * otherwise see its limit collapse to the minimum on milliseconds of scheduling noise (the sidecar's own
 * event loop is part of every sample: 3-8 ms on a busy 2-CPU host under c=32), queueing calls an idle
 * agent could take at once. For agents of tens of milliseconds and more it changes nothing that matters.
 */
const SLACK_MS = 20;
/**
 * At the minimum limit, the baseline creeps towards higher samples this fast: an agent slow even then
 * has really become slower. Above it, higher latency is ours to fix (queueing), so the baseline stays.
 */
const BASELINE_DRIFT = 0.02;
/** Weight of a new window's average in the smoothed latency. */
const SMOOTHING = 0.3;
/** A window that saw a timeout shrinks the limit by this factor. */
const TIMEOUT_BACKOFF = 0.7;
/** A window closes after at least this many samples (and at least `limit` of them). */
const MIN_WINDOW = 5;
/**
 * Every this many busy windows the limit drops to a quarter until the calls started before have drained
 * (a probe), then comes back: latency measured with less queueing in the agent lowers a baseline that
 * was first learned under load.
 */
const PROBE_EVERY = 50;

export interface LimitSnapshot {
  limit: number;
  /** Smoothed latency of the agent (ms), 0 before the first sample. */
  rttMs: number;
  /** The latency baseline (ms): the lowest seen (aged upwards only while the limit is at its minimum). */
  baselineMs: number;
}

export class AdaptiveLimit {
  readonly #settings: AdaptiveLimitSettings;
  #limit: number;
  #rtt = 0;
  #baseline = Number.POSITIVE_INFINITY;
  #windowSum = 0;
  #windowCount = 0;
  #windowMaxInflight = 0;
  #windowTimeouts = 0;
  #windows = 0;
  /** During a probe: the limit to return to, and the samples the probe window needs. */
  #probe: { restore: number; samples: number } | undefined;

  constructor(settings: AdaptiveLimitSettings) {
    this.#settings = settings;
    this.#limit = clamp(settings.initial, settings.min, settings.max);
  }

  /** The current limit, a whole number within [min, max]. */
  get limit(): number {
    return Math.max(this.#settings.min, Math.floor(this.#limit));
  }

  /** The smoothed latency (ms), or undefined before any call finished. */
  get rttMs(): number | undefined {
    return this.#rtt > 0 ? this.#rtt : undefined;
  }

  /** A call finished in `ms` while `inflight` calls (itself included) were running. */
  sample(ms: number, inflight: number): void {
    const value = Math.max(ms, 0.1);
    if (value < this.#baseline) this.#baseline = value;
    else if (this.#limit <= this.#settings.min) this.#baseline += (value - this.#baseline) * BASELINE_DRIFT;
    this.#windowSum += value;
    this.#windowCount++;
    if (inflight > this.#windowMaxInflight) this.#windowMaxInflight = inflight;
    this.#maybeUpdate();
  }

  /** A call ran into its deadline at the agent: a strong sign of too much concurrency. */
  timeout(inflight: number): void {
    this.#windowTimeouts++;
    this.#windowCount++;
    if (inflight > this.#windowMaxInflight) this.#windowMaxInflight = inflight;
    this.#maybeUpdate();
  }

  snapshot(): LimitSnapshot {
    return { limit: this.limit, rttMs: round(this.#rtt), baselineMs: Number.isFinite(this.#baseline) ? round(this.#baseline) : 0 };
  }

  #maybeUpdate(): void {
    if (this.#probe) {
      if (this.#windowCount < this.#probe.samples) return;
      this.#limit = this.#probe.restore;
      this.#probe = undefined;
      this.#resetWindow();
      return;
    }
    if (this.#windowCount < Math.max(MIN_WINDOW, this.limit)) return;
    const samples = this.#windowCount - this.#windowTimeouts;
    // The gradient reads this window's own latency, not the smoothed one: after a burst, a smoothed value
    // remembers the queueing of calls admitted under the old, higher limit for many windows and keeps
    // shrinking a limit that no longer causes it (measured: 20 → 1 and held there for seconds, the agent
    // half idle). The smoothed latency is for the wait estimates.
    const current = samples > 0 ? this.#windowSum / samples : this.#rtt;
    if (samples > 0) this.#rtt = this.#rtt === 0 ? current : this.#rtt + (current - this.#rtt) * SMOOTHING;
    let next = this.#limit;
    if (this.#windowTimeouts > 0) {
      next = this.#limit * TIMEOUT_BACKOFF;
    } else if (current > 0) {
      const gradient = clamp((TOLERANCE * this.#baseline + SLACK_MS) / current, 0.5, 1);
      // Grow only when the limit was actually used: an idle agent says nothing about more load.
      if (gradient >= 1) {
        if (this.#windowMaxInflight >= this.#limit / 2) next = this.#limit + Math.sqrt(this.#limit);
      } else {
        next = this.#limit * gradient;
      }
    }
    this.#limit = clamp(next, this.#settings.min, this.#settings.max);
    const busy = this.#windowMaxInflight >= this.#limit / 2;
    if (busy && ++this.#windows % PROBE_EVERY === 0 && this.#limit / 4 >= this.#settings.min) {
      const low = this.#limit / 4;
      this.#probe = { restore: this.#limit, samples: Math.ceil(this.#limit + Math.max(MIN_WINDOW, low)) };
      this.#limit = low;
    }
    this.#resetWindow();
  }

  #resetWindow(): void {
    this.#windowSum = 0;
    this.#windowCount = 0;
    this.#windowMaxInflight = 0;
    this.#windowTimeouts = 0;
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
