// Idle tracking for MCP sessions (mcp.sessionIdleTimeout): a session with no request in flight and no
// open stream for the timeout is handed to `onIdle` to be ended. One unref'd sweep timer per tracker,
// running only while it tracks something. It never ends anything itself.

export class IdleSessions<K> {
  readonly #entries = new Map<K, { holds: number; since: number }>();
  readonly #timeoutMs: number;
  readonly #onIdle: (key: K) => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number, onIdle: (key: K) => void) {
    this.#timeoutMs = timeoutMs;
    this.#onIdle = onIdle;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Starts tracking `key` (idle from now); tracking it again only marks it active. */
  add(key: K): void {
    const entry = this.#entries.get(key);
    if (entry) entry.since = Date.now();
    else this.#entries.set(key, { holds: 0, since: Date.now() });
    if (!this.#timer) {
      this.#timer = setInterval(() => this.sweep(), Math.max(100, Math.min(this.#timeoutMs / 4, 30_000)));
      this.#timer.unref();
    }
  }

  /** Marks `key` busy (a request or stream is open) until the returned function is called. */
  hold(key: K): () => void {
    const entry = this.#entries.get(key);
    if (!entry) return () => undefined;
    entry.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.holds--;
      entry.since = Date.now();
    };
  }

  delete(key: K): void {
    this.#entries.delete(key);
    if (this.#entries.size === 0) this.#stop();
  }

  /** Hands every session idle past the timeout to `onIdle`. Runs on the timer; public for tests. */
  sweep(now = Date.now()): void {
    for (const [key, entry] of this.#entries) {
      if (entry.holds > 0 || now - entry.since < this.#timeoutMs) continue;
      this.#entries.delete(key);
      this.#onIdle(key);
    }
    if (this.#entries.size === 0) this.#stop();
  }

  close(): void {
    this.#entries.clear();
    this.#stop();
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
