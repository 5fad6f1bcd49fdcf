// What the tool watcher needs of a Streamable HTTP MCP server, over the undici Pool the sidecar already
// holds for it, without the MCP SDK client (~7 MB of heap with its schemas) or Node's fetch (~2 MB):
// initialize (protocol version negotiated as the SDK client does), notifications/initialized, tools/list,
// ping, and the GET event stream that carries notifications/tools/list_changed (reopened with backoff).
// Answers may be JSON or an SSE stream; requests the server sends on either are answered (ping with an
// empty result, anything else with method-not-found), as the SDK client answers them.
import type { Pool } from '../transport/undici.ts';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';

/** MCP protocol versions, newest first: the MCP SDK client's LATEST_PROTOCOL_VERSION and SUPPORTED_PROTOCOL_VERSIONS (a test holds them equal). */
export const PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05', '2024-10-07'] as const;
/** The SDK client's default request timeout. */
const REQUEST_TIMEOUT_MS = 60_000;
/** One JSON-RPC message (a JSON body or one SSE event) larger than this fails the request. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** The GET stream is reopened after 1 s, then 1.5× longer each time, at most 30 s (the SDK's defaults). */
const STREAM_RETRY = { first: 1000, factor: 1.5, max: 30_000 };

export interface ToolSession {
  listTools(cursor: string | undefined): Promise<{ tools: Tool[]; nextCursor?: string }>;
  ping(timeoutMs: number): Promise<void>;
  /** Whether the server said it sends notifications/tools/list_changed. */
  readonly listChanged: boolean;
  /** Set by the watcher: called on notifications/tools/list_changed. */
  onToolsChanged?: () => void;
  /** Set by the watcher: called once when the session ends (close() or a failure). */
  onclose?: () => void;
  close(): Promise<void>;
}

type Message = { jsonrpc?: string; id?: string | number | null; method?: string; result?: unknown; error?: { code?: number; message?: string } };

export async function openHttpToolSession(options: { url: URL; pool: Pool; clientName: string }): Promise<ToolSession> {
  const { url, pool } = options;
  const path = `${url.pathname}${url.search}`;
  const closing = new AbortController();
  let sessionId: string | undefined;
  let protocolVersion: string | undefined;
  let nextId = 0;
  let ended = false;
  let lastEventId: string | undefined;
  let streamTimer: NodeJS.Timeout | undefined;

  const headers = (accept: string): Record<string, string> => ({
    accept,
    ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
    ...(protocolVersion ? { 'mcp-protocol-version': protocolVersion } : {}),
  });
  const end = (): void => {
    if (ended) return;
    ended = true;
    closing.abort();
    clearTimeout(streamTimer);
    session.onclose?.();
  };

  /** Answers a request the server sent: ping with {}, anything else with method-not-found. */
  const answer = (m: Message): void => {
    const reply = m.method === 'ping'
      ? { jsonrpc: '2.0', id: m.id, result: {} }
      : { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } };
    void post(reply).catch(() => undefined);
  };
  /** A message that is not the answer being waited for: a request, or a notification. */
  const other = (m: Message): void => {
    if (m.method !== undefined && m.id !== undefined) answer(m);
    else if (m.method === 'notifications/tools/list_changed') session.onToolsChanged?.();
  };

  /** POSTs one message; resolves with the answer whose id is `id` (undefined for a notification). */
  async function post(message: object, id?: number, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Message | undefined> {
    const signal = AbortSignal.any([closing.signal, AbortSignal.timeout(timeoutMs)]);
    const res = await pool.request({
      path, method: 'POST', signal, body: JSON.stringify(message),
      headers: { ...headers('application/json, text/event-stream'), 'content-type': 'application/json' },
    });
    const sid = res.headers['mcp-session-id'];
    if (typeof sid === 'string' && sid !== '') sessionId = sid;
    if (res.statusCode < 200 || res.statusCode >= 300) {
      const text = (await readAll(res.body).catch(() => '')).slice(0, 200);
      throw new Error(`MCP server answered HTTP ${res.statusCode}${text ? `: ${text}` : ''}`);
    }
    if (id === undefined) {
      res.body.resume();
      return undefined;
    }
    const isAnswer = (m: Message): boolean => m.id === id && m.method === undefined;
    let found: Message | undefined;
    if (String(res.headers['content-type'] ?? '').includes('text/event-stream')) {
      // The stream is read to its end (the server ends it after the answer; the connection is then
      // reused) but the answer is returned as soon as it arrives.
      found = await new Promise<Message | undefined>((resolve, reject) => {
        readEvents(res.body, (m) => { if (isAnswer(m)) resolve(m); else other(m); }, () => undefined)
          .then(() => resolve(undefined), reject);
      });
    } else {
      for (const m of [JSON.parse(await readAll(res.body)) as Message | Message[]].flat()) {
        if (isAnswer(m)) found ??= m;
        else other(m);
      }
    }
    if (!found) throw new Error(`the MCP server's answer had no response to request ${id}`);
    if (found.error) throw new Error(`MCP error ${found.error.code ?? ''}: ${found.error.message ?? 'no message'}`);
    return found;
  }
  const request = async (method: string, params: object | undefined, timeoutMs?: number): Promise<unknown> => {
    const id = ++nextId;
    return (await post({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) }, id, timeoutMs))?.result;
  };

  /** The GET stream of server notifications; a 405 means the server offers none. Reopened while the session lasts. */
  const openStream = async (delay: number): Promise<void> => {
    if (ended) return;
    let next = delay;
    try {
      const res = await pool.request({
        path, method: 'GET', signal: closing.signal,
        headers: { ...headers('text/event-stream'), ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
      });
      if (res.statusCode === 405) { res.body.resume(); return; }
      if (res.statusCode !== 200) { res.body.resume(); throw new Error(`GET stream: HTTP ${res.statusCode}`); }
      next = STREAM_RETRY.first;
      await readEvents(res.body, other, (eventId) => { lastEventId = eventId; });
    } catch {
      if (ended) return;
    }
    streamTimer = setTimeout(() => void openStream(Math.min(next * STREAM_RETRY.factor, STREAM_RETRY.max)), next);
    streamTimer.unref();
  };

  const session: ToolSession = {
    listChanged: false,
    async listTools(cursor) {
      const result = await request('tools/list', cursor ? { cursor } : undefined);
      return toolsPage(result);
    },
    async ping(timeoutMs) {
      await request('ping', undefined, timeoutMs);
    },
    async close() { end(); },
  };
  try {
    const init = await request('initialize', {
      protocolVersion: PROTOCOL_VERSIONS[0], capabilities: {}, clientInfo: { name: options.clientName, version: '0.1.0' },
    }) as { protocolVersion?: unknown; capabilities?: { tools?: { listChanged?: unknown } } } | undefined;
    const version = init?.protocolVersion;
    if (typeof version !== 'string' || !(PROTOCOL_VERSIONS as readonly string[]).includes(version)) {
      throw new Error(`Server's protocol version is not supported: ${String(version)}`);
    }
    if (typeof init?.capabilities !== 'object' || init.capabilities === null) throw new Error('Server sent an initialize result without capabilities');
    protocolVersion = version;
    (session as { listChanged: boolean }).listChanged = init.capabilities.tools?.listChanged === true;
    await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  } catch (err) {
    end();
    throw err;
  }
  void openStream(STREAM_RETRY.first);
  return session;
}

/** A tools/list result checked for what the watcher and the registry use: a tools array of named tools with an input schema. */
export function toolsPage(result: unknown): { tools: Tool[]; nextCursor?: string } {
  const r = result as { tools?: unknown; nextCursor?: unknown } | undefined;
  if (!r || !Array.isArray(r.tools)) throw new Error('the MCP server sent a tools/list result without a tools array');
  for (const t of r.tools as { name?: unknown; inputSchema?: unknown }[]) {
    if (typeof t !== 'object' || t === null || typeof t.name !== 'string' || typeof t.inputSchema !== 'object' || t.inputSchema === null) {
      throw new Error('the MCP server sent a tool without a name or an inputSchema object');
    }
  }
  if (r.nextCursor !== undefined && typeof r.nextCursor !== 'string') throw new Error('the MCP server sent a non-string nextCursor');
  return { tools: r.tools as Tool[], ...(r.nextCursor !== undefined ? { nextCursor: r.nextCursor as string } : {}) };
}

async function readAll(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_MESSAGE_BYTES) throw new Error(`the MCP server's answer exceeds ${MAX_MESSAGE_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Reads an SSE body to its end: each event's data (its data lines joined) parsed as one JSON-RPC message
 * and given to `onMessage` (an event that is not JSON is skipped); event ids go to `onId`. Bounded per event.
 */
export async function readEvents(body: AsyncIterable<Buffer>, onMessage: (m: Message) => void, onId: (id: string) => void): Promise<void> {
  let pending = '';
  let data: string[] = [];
  let size = 0;
  const dispatch = (): void => {
    const text = data.join('\n');
    data = [];
    size = 0;
    if (text === '') return;
    let message: Message;
    try { message = JSON.parse(text) as Message; } catch { return; }
    onMessage(message);
  };
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.search(/\r\n|\r|\n/)) !== -1) {
      if (nl === pending.length - 1 && pending[nl] === '\r') break; // a CRLF split across chunks
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + (pending.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        dispatch();
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1));
      if (field === 'data') {
        size += value.length;
        if (size > MAX_MESSAGE_BYTES) throw new Error(`an MCP server event exceeds ${MAX_MESSAGE_BYTES} bytes`);
        data.push(value);
      } else if (field === 'id' && !value.includes('\0')) onId(value);
    }
    if (pending.length > MAX_MESSAGE_BYTES) throw new Error(`an MCP server event line exceeds ${MAX_MESSAGE_BYTES} bytes`);
  }
  dispatch();
}
