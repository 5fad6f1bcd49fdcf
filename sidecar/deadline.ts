// One call's time budget as an AbortSignal: the whole exchange for a plain response, the first byte and
// each idle gap for an SSE stream (restart() on every chunk). Spans every attempt of a retried call.
import { MeshError } from '../sdk/index.ts';

/** One call's time budget as an AbortSignal; restart() begins a new idle gap (SSE). */
export class Deadline {
  readonly #controller = new AbortController();
  readonly #ms: number | undefined;
  readonly #target: string;
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number | undefined, target: string) {
    this.#ms = ms;
    this.#target = target;
    this.restart();
  }

  get signal(): AbortSignal { return this.#controller.signal; }

  restart(): void {
    if (this.#ms === undefined || this.#controller.signal.aborted) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#controller.abort(this.#error()), this.#ms);
    this.#timer.unref();
  }

  clear(): void { clearTimeout(this.#timer); }

  /** The timeout error when the deadline is what ended the call. */
  expired(): MeshError | undefined {
    return this.#controller.signal.aborted ? this.#error() : undefined;
  }

  #error(): MeshError {
    return new MeshError('UPSTREAM_TIMEOUT', `deadline of ${this.#ms} ms exceeded waiting for ${this.#target}`, { details: { timeoutMs: this.#ms } });
  }
}
