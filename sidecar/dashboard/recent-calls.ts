// The last calls this sidecar finished, for the dashboard's live view when no tap stream is open
// (GET /api/calls?after=SEQ). Recorded only while someone polled in the last minute; a fixed ring.
import type { Metrics } from '../metrics.ts';
import type { Direction } from '../request-context.ts';

export interface RecentCall {
  /** Increases by one per recorded call; a poller asks for calls after the last it saw. */
  seq: number;
  time: string;
  direction: Direction;
  /** The verified caller's SPIFFE ID (inbound side only). */
  caller?: string;
  target: string;
  method: string;
  status: number;
  durationMs: number;
}

const CAPACITY = 200;
const WATCH_MS = 60_000;

export class RecentCalls {
  readonly #ring: (RecentCall | undefined)[] = new Array<RecentCall | undefined>(CAPACITY);
  #seq = 0;
  #watchedUntil = 0;

  /** Free when nobody has polled for a minute. */
  record(direction: Direction, target: string, method: string, caller: string, code: number, seconds: number): void {
    if (this.#watchedUntil < Date.now()) return;
    const seq = ++this.#seq;
    const call: RecentCall = { seq, time: new Date().toISOString(), direction, target, method, status: code, durationMs: Math.round(seconds * 1e6) / 1000 };
    if (caller !== '-') call.caller = caller;
    this.#ring[seq % CAPACITY] = call;
  }

  /** Calls recorded after `seq`, oldest first; starts (or extends) the recording window. */
  after(seq: number): { seq: number; calls: RecentCall[] } {
    this.#watchedUntil = Date.now() + WATCH_MS;
    const calls: RecentCall[] = [];
    for (let s = Math.max(seq + 1, this.#seq - CAPACITY + 1); s <= this.#seq; s++) {
      const call = this.#ring[s % CAPACITY];
      if (call?.seq === s) calls.push(call);
    }
    return { seq: this.#seq, calls };
  }
}

/** The sidecar's metrics, also feeding `recent` with every finished request. */
export function withRecentCalls(metrics: Metrics, recent: RecentCalls): Metrics {
  return {
    ...metrics,
    observe(direction, target, method, caller, code, seconds) {
      metrics.observe(direction, target, method, caller, code, seconds);
      recent.record(direction, target, method, caller, code, seconds);
    },
  };
}
