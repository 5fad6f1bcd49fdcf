// Deduplication of A2A SendMessage at the receiving sidecar: a message whose id was seen from the same
// caller within the window gets the first outcome (waiting for it if still running) instead of
// starting a second task. This is what makes resending a SendMessage after a lost connection safe.
import type { ServerResponse } from 'node:http';

const WINDOW_MS = 5 * 60_000;
const MAX_ENTRIES = 10_000;
const MAX_CAPTURE = 1024 * 1024;

export interface Outcome {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

interface Entry {
  at: number;
  outcome: Promise<Outcome | undefined>;
}

const SEND_METHODS = new Set(['SendMessage', 'message/send']);

/** The dedup key of a JSON-RPC request body: caller, agent and message id of a (blocking) SendMessage. */
export function dedupKey(caller: string, agent: string, body: Buffer | undefined): string | undefined {
  if (!body || body.length === 0) return undefined;
  let value: { method?: unknown; params?: { message?: { messageId?: unknown } } };
  try {
    value = JSON.parse(body.toString('utf8')) as typeof value;
  } catch {
    return undefined;
  }
  const id = value.params?.message?.messageId;
  return typeof value.method === 'string' && SEND_METHODS.has(value.method) && typeof id === 'string' && id !== ''
    ? `${caller} ${agent} ${id}` : undefined;
}

export class MessageDedup {
  readonly #entries = new Map<string, Entry>();

  /** The first outcome for `key` if one is known or running; undefined if this is the first time. */
  previous(key: string): Promise<Outcome | undefined> | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (Date.now() - entry.at > WINDOW_MS) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.outcome;
  }

  /** Registers the first attempt; call `settle` with its outcome (undefined when it produced none). */
  begin(key: string): (outcome: Outcome | undefined) => void {
    let settle: (outcome: Outcome | undefined) => void = () => undefined;
    const outcome = new Promise<Outcome | undefined>((resolve) => { settle = resolve; });
    this.#entries.set(key, { at: Date.now(), outcome });
    if (this.#entries.size > MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value ?? '');
    // An attempt that ended without a usable answer leaves no trace: the next one runs for real.
    void outcome.then((o) => { if (!o && this.#entries.get(key)?.outcome === outcome) this.#entries.delete(key); });
    return settle;
  }
}

/** Writes a recorded outcome as the answer to a duplicate. */
export function replay(res: ServerResponse, outcome: Outcome): void {
  res.writeHead(outcome.status, { ...outcome.headers, 'content-length': outcome.body.length, 'x-agentmesh-deduplicated': 'true' });
  res.end(outcome.body);
}

/** Collects a plain JSON response as it streams past, for replay; SSE and oversized bodies are not kept. */
export function recorder(onDone: (outcome: Outcome | undefined) => void) {
  let status = 0;
  let headers: Record<string, string | string[]> = {};
  const chunks: Buffer[] = [];
  let size = 0;
  let keep = true;
  return {
    head(s: number, h: Record<string, string | string[] | undefined>) {
      status = s;
      headers = Object.fromEntries(Object.entries(h).filter((e): e is [string, string | string[]] => e[1] !== undefined && e[0] !== 'content-length' && e[0] !== 'transfer-encoding' && e[0] !== 'connection' && e[0] !== 'keep-alive'));
      keep = s < 500 && String(h['content-type'] ?? '').startsWith('application/json');
    },
    chunk(c: Buffer) {
      if (!keep) return;
      size += c.length;
      if (size > MAX_CAPTURE) { keep = false; chunks.length = 0; return; }
      chunks.push(c);
    },
    end(complete: boolean) {
      onDone(keep && complete && status > 0 ? { status, headers, body: Buffer.concat(chunks) } : undefined);
    },
  };
}
