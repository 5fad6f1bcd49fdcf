// A failure that can repeat on every request or retry, logged once per state change with a count:
// "failing since …" on the first failure, "recovered after N failures" on the next success. No timers;
// a long outage is summarised again at most once per `remindMs`, on a failure that happens anyway.
import type { Logger } from './log.ts';

export interface FailureLogOptions {
  /** What fails, as the log message starts: e.g. 'task affinity store'. */
  what: string;
  /** Repeat a "still failing" line at most this often while the failure lasts (default 60 s; 0 never). */
  remindMs?: number;
  /** The clock, for tests. */
  now?: () => number;
}

export class FailureLog {
  readonly #log: Logger;
  readonly #what: string;
  readonly #remindMs: number;
  readonly #now: () => number;
  #failures = 0;
  #since = 0;
  #reminded = 0;

  constructor(log: Logger, options: FailureLogOptions) {
    this.#log = log;
    this.#what = options.what;
    this.#remindMs = options.remindMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** Failures since the last success (0 while things work). */
  get failures(): number { return this.#failures; }

  /** Counts a failure; logs only the first of a run (and a reminder now and then). */
  failure(err: unknown): void {
    const now = this.#now();
    this.#failures++;
    if (this.#failures === 1) {
      this.#since = now;
      this.#reminded = now;
      this.#log.warn({ err, failures: 1, since: new Date(now).toISOString() }, `${this.#what} failing`);
    } else if (this.#remindMs > 0 && now - this.#reminded >= this.#remindMs) {
      this.#reminded = now;
      this.#log.warn({ err: describe(err), failures: this.#failures, since: new Date(this.#since).toISOString() },
        `${this.#what} still failing since ${new Date(this.#since).toISOString()}, ${this.#failures} times`);
    }
  }

  /** Ends a run of failures (logging how many there were); costs nothing when there was none. */
  success(): void {
    if (this.#failures === 0) return;
    const failures = this.#failures;
    this.#failures = 0;
    this.#log.info({ failures, since: new Date(this.#since).toISOString(), downMs: this.#now() - this.#since },
      `${this.#what} recovered after ${failures} failure${failures === 1 ? '' : 's'}`);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
