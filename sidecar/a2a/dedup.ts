// Deduplication of A2A SendMessage at the receiving sidecar: a message whose id was seen from the same
// caller within the window gets the first outcome (waiting for it if still running) instead of
// starting a second task. This is what makes resending a SendMessage after a lost connection safe.
import type { ServerResponse } from 'node:http';
import { DEDUPLICATED_HEADER } from '../../sdk/mesh-headers.ts';

const WINDOW_MS = 5 * 60_000;
const MAX_ENTRIES = 10_000;
/** Recorded answers kept in all; the oldest go first beyond it (a resend comes within seconds). */
const MAX_BYTES = 4 * 1024 * 1024;
const MAX_CAPTURE = 1024 * 1024;

export interface Outcome {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

interface Entry {
  at: number;
  outcome: Promise<Outcome | undefined>;
  bytes: number;
}

/** The dedup key of a deduplicated A2A request (SendMessage): caller, agent and message id. */
export function dedupKey(caller: string, agent: string, messageId: string): string {
  return `${caller} ${agent} ${messageId}`;
}

export class MessageDedup {
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;

  /** The first outcome for `key` if one is known or running; undefined if this is the first time. */
  previous(key: string): Promise<Outcome | undefined> | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (Date.now() - entry.at > WINDOW_MS) {
      this.#delete(key, entry);
      return undefined;
    }
    return entry.outcome;
  }

  /** Registers the first attempt; call `settle` with its outcome (undefined when it produced none). */
  begin(key: string): (outcome: Outcome | undefined) => void {
    let settle: (outcome: Outcome | undefined) => void = () => undefined;
    const outcome = new Promise<Outcome | undefined>((resolve) => { settle = resolve; });
    const entry: Entry = { at: Date.now(), outcome, bytes: 0 };
    this.#entries.set(key, entry);
    this.#evict();
    return (o) => {
      settle(o);
      if (this.#entries.get(key) !== entry) return;
      // An attempt that ended without a usable answer leaves no trace: the next one runs for real.
      if (!o) this.#delete(key, entry);
      else {
        entry.bytes = o.body.length;
        this.#bytes += entry.bytes;
        this.#evict();
      }
    };
  }

  /** Drops the oldest entries past the count or byte limit. */
  #evict(): void {
    while (this.#entries.size > MAX_ENTRIES || this.#bytes > MAX_BYTES) {
      const oldest = this.#entries.entries().next().value;
      if (!oldest) return;
      this.#delete(oldest[0], oldest[1]);
    }
  }

  #delete(key: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }
}

/** Writes a recorded outcome as the answer to a duplicate. */
export function replay(res: ServerResponse, outcome: Outcome): void {
  res.writeHead(outcome.status, { ...outcome.headers, 'content-length': outcome.body.length, [DEDUPLICATED_HEADER]: 'true' });
  res.end(outcome.body);
}

/** Collects a plain JSON response as it streams past, for replay; SSE and oversized bodies are not kept. */
export function recorder(onDone: (outcome: Outcome | undefined) => void) {
  let status = 0;
  let headers: Record<string, string | string[] | undefined> = {};
  const chunks: Buffer[] = [];
  let size = 0;
  let keep = true;
  return {
    head(s: number, h: Record<string, string | string[] | undefined>) {
      status = s;
      headers = h;
      keep = s < 500 && String(h['content-type'] ?? '').startsWith('application/json');
    },
    chunk(c: Buffer) {
      if (!keep) return;
      size += c.length;
      if (size > MAX_CAPTURE) { keep = false; chunks.length = 0; return; }
      chunks.push(c);
    },
    end(complete: boolean) {
      // Copied out of the socket's buffers, so a kept answer does not pin them.
      onDone(keep && complete && status > 0 ? { status, headers: replayHeaders(headers), body: Buffer.concat(chunks, size) } : undefined);
    },
  };
}

const NOT_REPLAYED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

function replayHeaders(h: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in h) {
    const value = h[name];
    if (value !== undefined && !NOT_REPLAYED.has(name)) out[name] = value;
  }
  return out;
}
