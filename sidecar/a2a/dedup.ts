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
  /** As the agent answered; hop-by-hop ones are dropped when replayed (replay is rare, recording is not). */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

interface Entry {
  at: number;
  /** Set once the first attempt ended with an answer worth replaying. */
  outcome: Outcome | undefined;
  /** The first attempt still runs. */
  running: boolean;
  /** Duplicates waiting for a running first attempt (rare: no promise is made per message unless one waits). */
  waiting: ((outcome: Outcome | undefined) => void)[] | undefined;
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
    if (!entry.running) return Promise.resolve(entry.outcome);
    return new Promise<Outcome | undefined>((resolve) => { (entry.waiting ??= []).push(resolve); });
  }

  /** Registers the first attempt; call `settle` with its outcome (undefined when it produced none). */
  begin(key: string): (outcome: Outcome | undefined) => void {
    const entry: Entry = { at: Date.now(), outcome: undefined, running: true, waiting: undefined, bytes: 0 };
    this.#entries.set(key, entry);
    this.#evict();
    return (o) => {
      if (!entry.running) return;
      entry.running = false;
      entry.outcome = o;
      const waiting = entry.waiting;
      entry.waiting = undefined;
      if (waiting) for (const resolve of waiting) resolve(o);
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
  const headers: Record<string, string | string[] | number> = replayHeaders(outcome.headers);
  headers['content-length'] = outcome.body.length;
  headers[DEDUPLICATED_HEADER] = 'true';
  res.writeHead(outcome.status, headers);
  res.end(outcome.body);
}

/** Collects a plain JSON response as it streams past, for replay; SSE and oversized bodies are not kept. */
export function recorder(onDone: (outcome: Outcome | undefined) => void): Recording {
  return new Recording(onDone);
}

/**
 * One attempt's answer as it streams past (ForwardRequest.observe). A class, not an object of closures:
 * one object per SendMessage; the first chunk is held in a field (a small answer is one chunk, no array).
 */
export class Recording {
  readonly #onDone: (outcome: Outcome | undefined) => void;
  #status = 0;
  #headers: Record<string, string | string[] | undefined> = NONE;
  #first: Buffer | undefined;
  #more: Buffer[] | undefined;
  #size = 0;
  #keep = true;

  constructor(onDone: (outcome: Outcome | undefined) => void) {
    this.#onDone = onDone;
  }

  head(s: number, h: Record<string, string | string[] | undefined>): void {
    this.#status = s;
    this.#headers = h;
    this.#keep = s < 500 && String(h['content-type'] ?? '').startsWith('application/json');
  }

  chunk(c: Buffer): void {
    if (!this.#keep) return;
    this.#size += c.length;
    if (this.#size > MAX_CAPTURE) {
      this.#keep = false;
      this.#first = this.#more = undefined;
      return;
    }
    if (this.#first === undefined) this.#first = c;
    else (this.#more ??= []).push(c);
  }

  end(complete: boolean): void {
    const keep = this.#keep && complete && this.#status > 0;
    this.#onDone(keep ? { status: this.#status, headers: this.#headers, body: ownCopy(this.#first, this.#more, this.#size) } : undefined);
  }
}

const NONE: Record<string, string | string[] | undefined> = Object.freeze({});

/**
 * A kept answer, copied out of the socket's read buffers into memory of its own size. Not Buffer.concat:
 * under 4 KB it takes a slice of Node's shared 8 KB pool, and one kept answer then holds the whole slab
 * (measured: 10,000 kept 0.5 KB answers held about 80 MB, not the 5 MB the store's bound counts).
 */
function ownCopy(first: Buffer | undefined, more: readonly Buffer[] | undefined, size: number): Buffer {
  const body = Buffer.allocUnsafeSlow(size);
  let at = first === undefined ? 0 : first.copy(body, 0);
  if (more !== undefined) for (const chunk of more) at += chunk.copy(body, at);
  return body;
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
