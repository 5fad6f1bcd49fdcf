// The lifetime of one proxied call: it ends at its deadline (the whole exchange for a plain answer, the
// first event and each gap between events for an SSE stream) or when the caller's response closes first
// (the caller went away, or shutdown closed its connection). Spans every attempt of a retried call.
import type { ServerResponse } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';

/**
 * One timer and one 'close' listener per call, and no AbortController unless a retry needs a signal to
 * sleep on: in profiles, per-request AbortSignal.any and AbortController cost more than the proxying.
 */
export class CallScope {
  readonly #res: ServerResponse;
  readonly #ms: number | undefined;
  readonly #target: string;
  #timer: NodeJS.Timeout | undefined;
  #reason: MeshError | undefined;
  #abortCurrent: Abortable | undefined;
  #controller: AbortController | undefined;
  #finished = false;
  /** Set by restart(): the current idle gap ends here (ms since the epoch); 0 for a plain deadline. */
  #idleUntil = 0;

  constructor(res: ServerResponse, ms: number | undefined, target: string) {
    this.#res = res;
    this.#ms = ms;
    this.#target = target;
    // on, not once (no wrapper per call): finish() removes it, and #onClose ends the call only once.
    res.on('close', this.#onClose);
    if (res.destroyed) this.#end(gone());
    else if (ms !== undefined) {
      this.#timer = setTimeout(this.#onTimer, ms);
      this.#timer.unref();
    }
  }

  /** Why the call ended early (UPSTREAM_TIMEOUT or ABORTED), or undefined while it runs. */
  get ended(): MeshError | undefined { return this.#reason; }

  /** A signal for waits between attempts; created on first use. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#reason) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /**
   * Registers how to abort the exchange now in flight (a function, or undici's dispatch controller itself:
   * no closure per attempt); called at once if the call already ended.
   */
  attach(abort: Abortable): void {
    this.#abortCurrent = abort;
    if (this.#reason) abortWith(abort, this.#reason);
  }

  /**
   * Begins a new idle gap (every complete event of an SSE stream). Only moves a number: the timer, when it fires,
   * re-arms itself for what is left of the gap (cheaper per chunk than refresh(), and fake clocks see it).
   */
  restart(): void {
    if (this.#ms !== undefined) this.#idleUntil = Date.now() + this.#ms;
  }

  /** The call is over: stops the timer and stops watching the caller. Idempotent. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#timer);
    this.#res.off('close', this.#onClose);
    this.#abortCurrent = undefined;
  }

  readonly #onTimer = (): void => {
    const left = this.#idleUntil - Date.now();
    if (left <= 0) return this.#end(this.#timeout());
    this.#timer = setTimeout(this.#onTimer, left);
    this.#timer.unref();
  };

  readonly #onClose = (): void => {
    if (!this.#finished) this.#end(gone());
  };

  #end(reason: MeshError): void {
    if (this.#reason || this.#finished) return;
    this.#reason = reason;
    clearTimeout(this.#timer);
    this.#controller?.abort(reason);
    if (this.#abortCurrent) abortWith(this.#abortCurrent, reason);
  }

  #timeout(): MeshError {
    return new MeshError('UPSTREAM_TIMEOUT', `deadline of ${this.#ms} ms exceeded waiting for ${this.#target}`, { details: { timeoutMs: this.#ms } });
  }
}

/** What attach() takes: a function, or an object with abort() such as undici's DispatchController. */
export type Abortable = ((reason: MeshError) => void) | { abort(reason: MeshError): void };

function abortWith(abort: Abortable, reason: MeshError): void {
  if (typeof abort === 'function') abort(reason);
  else abort.abort(reason);
}

function gone(): MeshError {
  return new MeshError('ABORTED', 'caller closed the connection');
}
