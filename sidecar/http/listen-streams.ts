// The long-lived "listen" streams (MCP's GET SSE stream) a sidecar is serving. They carry no call in
// flight, so a graceful shutdown ends them at once instead of waiting for them to drain.
import type { ServerResponse } from 'node:http';

export class ListenStreams {
  readonly #open = new Set<ServerResponse>();
  #ended = false;

  /** Tracks `res` until it closes; ended at once if shutdown has already begun. */
  track(res: ServerResponse): void {
    if (this.#ended) {
      res.end();
      return;
    }
    this.#open.add(res);
    res.once('close', () => this.#open.delete(res));
  }

  /** Ends every tracked stream (the client sees the SSE stream end and may reconnect elsewhere). */
  endAll(): void {
    this.#ended = true;
    for (const res of this.#open) res.end();
    this.#open.clear();
  }
}
