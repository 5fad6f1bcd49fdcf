// Bounds one upstream SSE stream as it passes: finds event boundaries (a blank line) in each chunk
// without copying, holds back the bytes of an incomplete event (zero-copy views, at most the cap), and
// reports a line or event over the cap. Knows nothing of HTTP; proxy.ts decides what to do with that.

/** The A2A / MCP default for limits.maxSseEvent: 1 MiB. */
export const DEFAULT_MAX_SSE_EVENT = 1024 * 1024;

export class SseGuard {
  readonly #max: number;
  /** Bytes of the current line so far (the bytes since the last LF). */
  #line = 0;
  /** Bytes of the complete lines of the current event so far. */
  #event = 0;
  /** The last byte seen was CR (a CRLF split across chunks). */
  #cr = false;
  /** Views of the incomplete event's bytes, passed on once it completes. */
  #held: Buffer[] = [];
  #exceeded = false;

  constructor(max: number) {
    this.#max = max;
  }

  /** True once a line or event went over the cap: nothing more is passed on. */
  get exceeded(): boolean { return this.#exceeded; }

  /** What the stream was cut for, for the error the caller sees. */
  describe(): string {
    return `an upstream SSE ${this.#line > this.#max ? 'line' : 'event'} exceeded the limit of ${this.#max} bytes (limits.maxSseEvent); the stream was ended`;
  }

  /**
   * Scans `chunk`; passes on every complete event (the chunk itself when it ends on a boundary), holds
   * the rest. `onEvent` runs when at least one event completed. Returns `pass`'s last answer (false
   * asks for back-pressure), or true when everything was held.
   */
  feed(chunk: Buffer, pass: (bytes: Buffer) => boolean, onEvent: () => void): boolean {
    if (this.#exceeded) return true;
    // The usual chunk: whole events, nothing pending, no larger than the cap (so no line or event can be).
    if (this.#line === 0 && this.#event === 0 && this.#held.length === 0 && chunk.length <= this.#max && endsEvent(chunk)) {
      onEvent();
      return pass(chunk);
    }
    const boundary = this.#scan(chunk);
    if (this.#exceeded) {
      this.#held = [];
      return true;
    }
    if (boundary === -1) {
      this.#held.push(chunk);
      return true;
    }
    onEvent();
    let more = true;
    if (this.#held.length > 0) {
      for (const piece of this.#held) more = pass(piece);
      this.#held = [];
    }
    if (boundary === chunk.length) return pass(chunk);
    more = pass(chunk.subarray(0, boundary));
    this.#held.push(chunk.subarray(boundary));
    return more;
  }

  /** The stream ended: an incomplete last event goes out as the upstream sent it. */
  flush(pass: (bytes: Buffer) => boolean): void {
    if (this.#exceeded) return;
    for (const piece of this.#held) pass(piece);
    this.#held = [];
  }

  /** The offset just past the last blank line in `chunk`, or -1; sets exceeded at the cap. */
  #scan(chunk: Buffer): number {
    let start = 0;
    let boundary = -1;
    for (let lf = chunk.indexOf(10); lf !== -1; lf = chunk.indexOf(10, start)) {
      const length = this.#line + (lf - start);
      // A blank line is "\n" or "\r\n" (its CR possibly at the end of the previous chunk).
      if (length === 0 || (length === 1 && (lf > 0 ? chunk[lf - 1] === 13 : this.#cr))) {
        this.#event = 0;
        boundary = lf + 1;
      } else {
        this.#event += length + 1;
        if (this.#event > this.#max) {
          this.#line = length;
          this.#exceeded = true;
          return -1;
        }
      }
      this.#line = 0;
      start = lf + 1;
    }
    this.#line += chunk.length - start;
    this.#cr = chunk.length > 0 && chunk[chunk.length - 1] === 13;
    if (this.#event + this.#line > this.#max) this.#exceeded = true;
    return boundary;
  }
}

/** The chunk ends with a blank line ("\n\n" or "\r\n\r\n"). */
function endsEvent(chunk: Buffer): boolean {
  const n = chunk.length;
  if (n < 2 || chunk[n - 1] !== 10) return false;
  return chunk[n - 2] === 10 || (n >= 4 && chunk[n - 2] === 13 && chunk[n - 3] === 10 && chunk[n - 4] === 13);
}
