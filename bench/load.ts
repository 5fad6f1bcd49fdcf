// The load generator's clients (undici Pools): one ~1 KB A2A SendMessage, an A2A SSE stream timed per
// event, an MCP session calling tools/call, and the two load shapes (closed loop, fixed rate).
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

/** Events per stream the agent sends: the task, 18 artifact chunks and the final status. */
export const STREAM_EVENTS = 20;
/** Pause between stream events in the agent (ms). */
export const STREAM_GAP_MS = 1;

/** Padding that brings a SendMessage request body to about 1 KB. */
const PAD = 'x'.repeat(820);

const A2A_HEADERS = { 'content-type': 'application/json', accept: 'application/json', 'a2a-version': '1.0' };

export function sendMessageBody(id: number, text = PAD): string {
  return JSON.stringify({
    jsonrpc: '2.0', id, method: 'SendMessage',
    params: { message: { messageId: `m-${id}-${Math.random().toString(36).slice(2)}`, role: 'ROLE_USER', parts: [{ text, mediaType: 'text/plain' }] }, configuration: {} },
  });
}

export class HttpClient {
  readonly pool: Pool;
  #id = 0;
  constructor(readonly origin: string, connections = 64) {
    this.pool = new Pool(origin, { connections, keepAliveTimeout: 30_000 });
  }

  /** One SendMessage; resolves with its latency in ms once the whole answer is read. Rejects on a non-200. */
  async sendMessage(path: string): Promise<number> {
    const body = sendMessageBody(++this.#id);
    const start = performance.now();
    const res = await this.pool.request({ path, method: 'POST', headers: A2A_HEADERS, body });
    const text = await res.body.text();
    const ms = performance.now() - start;
    if (res.statusCode !== 200 || !text.includes('"result"')) throw new Error(`SendMessage via ${this.origin}${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
    return ms;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export interface StreamTiming {
  /** Request start to the first event, and to the last event (ms). */
  firstMs: number;
  lastMs: number;
  events: number;
  /** Agent send time to caller arrival for every stamped event (ms). */
  perEventMs: number[];
  /** The first event arrived before the agent sent the last one. */
  firstBeforeLastSent: boolean;
}

/** One SendStreamingMessage; times every SSE event as it arrives. */
export async function streamOnce(client: HttpClient, path: string, id: number): Promise<StreamTiming> {
  const body = JSON.stringify({ ...JSON.parse(sendMessageBody(id, `stream ${id}`)) as object, method: 'SendStreamingMessage' });
  const start = process.hrtime.bigint();
  const res = await client.pool.request({ path, method: 'POST', headers: { ...A2A_HEADERS, accept: 'text/event-stream' }, body });
  if (res.statusCode !== 200) throw new Error(`stream via ${client.origin}${path}: HTTP ${res.statusCode} ${await res.body.text()}`);
  const arrivals: bigint[] = [];
  const perEventMs: number[] = [];
  let lastStamp = 0n;
  let buffered = '';
  for await (const chunk of res.body) {
    const now = process.hrtime.bigint();
    buffered += (chunk as Buffer).toString('utf8');
    let end: number;
    while ((end = buffered.indexOf('\n\n')) !== -1) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (!event.includes('data:')) continue;
      arrivals.push(now);
      const stamp = /t=(\d+)/.exec(event)?.[1];
      if (stamp) {
        lastStamp = BigInt(stamp);
        perEventMs.push(Number(now - lastStamp) / 1e6);
      }
    }
  }
  const first = arrivals[0] ?? 0n;
  const last = arrivals.at(-1) ?? 0n;
  if (arrivals.length !== STREAM_EVENTS) throw new Error(`stream via ${client.origin}${path}: ${arrivals.length} events, expected ${STREAM_EVENTS}`);
  return {
    firstMs: Number(first - start) / 1e6, lastMs: Number(last - start) / 1e6, events: arrivals.length, perEventMs,
    firstBeforeLastSent: first < lastStamp,
  };
}

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** An MCP Streamable HTTP session (initialize, initialized) whose call() times one tools/call. */
export async function mcpSession(client: HttpClient, path: string) {
  const post = async (message: object, session?: string) => {
    const headers: Record<string, string> = { ...MCP_HEADERS, ...(session ? { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' } : {}) };
    const res = await client.pool.request({ path, method: 'POST', headers, body: JSON.stringify(message) });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`MCP via ${client.origin}${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
    return { text, session: res.headers['mcp-session-id'] };
  };
  const init = await post({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1.0.0' } } });
  const session = typeof init.session === 'string' ? init.session : undefined;
  if (!session) throw new Error(`MCP via ${client.origin}${path}: no Mcp-Session-Id in the initialize answer`);
  await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, session);
  let id = 0;
  return {
    async call(): Promise<number> {
      const start = performance.now();
      const { text } = await post({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } }, session);
      const ms = performance.now() - start;
      if (!text.includes('echo:hi')) throw new Error(`MCP tools/call via ${client.origin}${path}: unexpected answer ${text.slice(0, 200)}`);
      return ms;
    },
    async close(): Promise<void> {
      await client.pool.request({ path, method: 'DELETE', headers: { 'mcp-session-id': session } }).then((r) => r.body.dump()).catch(() => undefined);
    },
  };
}

export interface LoadResult {
  latencies: number[];
  /** Requests completed inside the measured window. */
  completed: number;
  /** Every request answered or failed, ramp included (what the proxies' CPU time is divided by). */
  handled: number;
  seconds: number;
  errors: number;
  firstError?: string;
  /** Fixed rate only: how late each request left compared with its schedule (ms). */
  lagMs?: number[];
  /** Fixed rate only: requests not sent because MAX_IN_FLIGHT were already waiting (rate not sustained). */
  dropped?: number;
}

/** A fixed-rate run stops adding requests past this backlog, so an overloaded pair cannot stall the run. */
export const MAX_IN_FLIGHT = 256;

/** `concurrency` workers back to back for `durationMs`; the first `rampMs` is not counted. */
export async function closedLoop(send: () => Promise<number>, concurrency: number, durationMs: number, rampMs: number): Promise<LoadResult> {
  const start = performance.now();
  const from = start + rampMs;
  const until = start + durationMs;
  const result: LoadResult = { latencies: [], completed: 0, handled: 0, seconds: (durationMs - rampMs) / 1000, errors: 0 };
  const worker = async (): Promise<void> => {
    while (performance.now() < until) {
      const began = performance.now();
      try {
        const ms = await send();
        if (began >= from && performance.now() <= until) { result.latencies.push(ms); result.completed++; }
      } catch (err) {
        result.errors++;
        result.firstError ??= String(err);
      }
      result.handled++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return result;
}

/** An open loop: requests leave on a fixed schedule of `rate` per second, whatever the answers do. */
export async function fixedRate(send: () => Promise<number>, rate: number, durationMs: number): Promise<LoadResult> {
  const total = Math.round((rate * durationMs) / 1000);
  const result: LoadResult = { latencies: [], completed: 0, handled: 0, seconds: durationMs / 1000, errors: 0, lagMs: [], dropped: 0 };
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) * rate) / 1000) + 1);
      for (; sent < due; sent++) {
        result.lagMs?.push(now - (start + (sent * 1000) / rate));
        if (inFlight.size >= MAX_IN_FLIGHT) {
          result.dropped = (result.dropped ?? 0) + 1;
          continue;
        }
        const p = send().then((ms) => { result.latencies.push(ms); result.completed++; }, (err: unknown) => { result.errors++; result.firstError ??= String(err); })
          .finally(() => { result.handled++; });
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + (sent * 1000) / rate - performance.now()));
      else resolve();
    };
    tick();
  });
  await Promise.all(inFlight);
  return result;
}
