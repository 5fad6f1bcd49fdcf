// The live call stream behind the admin listener's GET /api/tap: WebSocket clients (ws) with filters
// from the query (agent, method, direction). Bounded per client: one whose unsent bytes pass the bound
// is dropped, so a client that stops reading never slows or grows the calls it watches. ws (~5 MB of
// RSS) is loaded with the first tap client: most sidecars never have one.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { CallEvent } from './call-event.ts';

/** Unsent bytes a tap client may have queued before it is dropped. */
export const TAP_MAX_BUFFERED = 256 * 1024;
const MAX_CLIENTS = 64;
const FILTERS = new Set(['agent', 'method', 'direction']);

export interface TapFilter {
  /** Calls to this agent or MCP server, or from this agent (the caller's SPIFFE ID ends /agent/NAME). */
  agent?: string;
  /** The method as the metrics name it: SendMessage, `MCP tools/call` … (case-insensitive). */
  method?: string;
  direction?: 'outbound' | 'inbound';
}

interface Client {
  ws: WebSocket;
  filter: TapFilter;
}

export class Tap {
  readonly #clients = new Set<Client>();
  #server: Promise<WebSocketServer> | undefined;
  #closed = false;
  readonly #maxBuffered: number;
  /** Clients dropped for falling behind (for /api/state and tests). */
  dropped = 0;

  constructor(options: { maxBuffered?: number } = {}) {
    this.#maxBuffered = options.maxBuffered ?? TAP_MAX_BUFFERED;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Sends the event to every client whose filter matches; free when nobody watches. Never waits. */
  publish(event: CallEvent): void {
    if (this.#clients.size === 0) return;
    let json: string | undefined;
    for (const client of this.#clients) {
      if (!matches(client.filter, event)) continue;
      if (client.ws.bufferedAmount > this.#maxBuffered) {
        this.dropped++;
        this.#clients.delete(client);
        client.ws.terminate();
        continue;
      }
      json ??= JSON.stringify(event);
      client.ws.send(json);
    }
  }

  /** Takes over an HTTP upgrade on /api/tap; answers 400 for a bad filter, 503 past the client limit. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (url.pathname !== '/api/tap') return refuse(socket, 404, `no admin route ${url.pathname}`);
    const filter = parseFilter(url.searchParams);
    if (typeof filter === 'string') return refuse(socket, 400, filter);
    if (this.#clients.size >= MAX_CLIENTS) return refuse(socket, 503, `too many tap clients (at most ${MAX_CLIENTS})`);
    this.#server ??= import('ws').then(({ WebSocketServer: Server }) => new Server({ noServer: true, maxPayload: 1024 }));
    this.#server.then((server) => {
      if (this.#closed || socket.destroyed) return void socket.destroy();
      server.handleUpgrade(req, socket, head, (ws) => {
        const client = { ws, filter };
        this.#clients.add(client);
        ws.on('close', () => this.#clients.delete(client));
        ws.on('error', () => ws.terminate());
      });
    }, (err: unknown) => refuse(socket, 503, `the tap is unavailable: ws could not be loaded (${String(err)})`));
  }

  /** Ends every tap stream. Idempotent. */
  close(): void {
    for (const client of this.#clients) client.ws.close(1001, 'sidecar stopping');
    for (const client of this.#clients) client.ws.terminate();
    this.#clients.clear();
    this.#closed = true;
    void this.#server?.then((server) => server.close(), () => undefined);
  }
}

/** The filter of a tap query, or the problem with it. */
export function parseFilter(params: URLSearchParams): TapFilter | string {
  const filter: TapFilter = {};
  for (const [key, value] of params) {
    if (!FILTERS.has(key)) return `unknown tap filter '${key}' (known: ${[...FILTERS].join(', ')})`;
    if (value === '' || value.length > 200) return `tap filter '${key}' needs a value of 1-200 characters`;
    if (key === 'agent') filter.agent = value;
    else if (key === 'method') filter.method = value.toLowerCase();
    else if (value === 'outbound' || value === 'inbound') filter.direction = value;
    else return `tap filter 'direction' is outbound or inbound, got '${value}'`;
  }
  return filter;
}

export function matches(filter: TapFilter, event: CallEvent): boolean {
  if (filter.direction !== undefined && event.direction !== filter.direction) return false;
  if (filter.method !== undefined && event.method.toLowerCase() !== filter.method) return false;
  if (filter.agent !== undefined) {
    const name = event.target?.slice(event.target.indexOf('/') + 1);
    if (name !== filter.agent && !(event.caller?.endsWith(`/agent/${filter.agent}`) ?? false)) return false;
  }
  return true;
}

function refuse(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ error: { code: status, message } });
  socket.end(`HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : status === 404 ? 'Not Found' : 'Service Unavailable'}\r\n`
    + `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
