// Exposes a stdio MCP server over Streamable HTTP without re-encoding: each HTTP session gets its own
// child process and JSON-RPC messages are piped both ways unchanged (so sampling, elicitation, roots,
// progress and cancellation all work). A child that crashes is restarted with backoff and re-initialised
// with the session's own initialize request, so the client's session survives. A session idle for
// mcp.sessionIdleTimeout (no request in flight, no open stream) is closed and its process ends.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, isJSONRPCRequest, isJSONRPCNotification, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { MeshError } from '../../sdk/errors.ts';
import type { Logger } from '../log.ts';
import { FailureLog } from '../log-once.ts';
import { sendError } from '../http/respond.ts';
import { IdleSessions } from './idle-sessions.ts';

export interface StdioCommand {
  command: readonly string[];
  env: Readonly<Record<string, string>>;
  cwd?: string | undefined;
}

/** Starts the configured program as a stdio client transport, its stderr going to the sidecar's log. */
export function spawnStdio(name: string, spec: StdioCommand, log: Logger): StdioClientTransport {
  const [command = '', ...args] = spec.command;
  const transport = new StdioClientTransport({
    command, args, env: { ...getDefaultEnvironment(), ...spec.env }, stderr: 'pipe', ...(spec.cwd ? { cwd: spec.cwd } : {}),
  });
  const stderr = transport.stderr as Readable | null;
  if (stderr) createInterface({ input: stderr }).on('line', (line) => log.info({ mcp: name, stderr: line }, 'mcp server stderr'));
  return transport;
}

class BridgeSession {
  readonly http: StreamableHTTPServerTransport;
  #child: StdioClientTransport | undefined;
  #initialize: JSONRPCMessage | undefined;
  #initialized = false;
  /** Requests the client sent that the server has not answered yet: id → progress token. */
  readonly #inFlight = new Map<RequestId, string | number | undefined>();
  #closed = false;
  #restarts = 0;
  /** Writes to the child fail on every message while it is broken: logged once per run with a count. */
  #writes: FailureLog | undefined;

  constructor(private readonly name: string, private readonly spec: StdioCommand, private readonly log: Logger, onSession: (id: string, s: BridgeSession) => void, onClose: (id: string) => void) {
    this.http = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => onSession(id, this),
      onsessionclosed: (id) => onClose(id),
    });
    this.http.onmessage = (message) => { void this.#toChild(message); };
    this.http.onclose = () => {
      this.#closed = true;
      if (this.http.sessionId) onClose(this.http.sessionId);
      void this.#child?.close();
    };
  }

  async #toChild(message: JSONRPCMessage): Promise<void> {
    if (isInitializeRequest(message)) this.#initialize = message;
    if (isJSONRPCNotification(message) && message.method === 'notifications/initialized') this.#initialized = true;
    if (isJSONRPCRequest(message)) {
      const token = (message.params as { _meta?: { progressToken?: string | number } } | undefined)?._meta?.progressToken;
      this.#inFlight.set(message.id, token);
    }
    const child = await this.#ensureChild();
    this.#writes ??= new FailureLog(this.log.child({ mcp: this.name }), { what: 'writing to the stdio MCP server' });
    const writes = this.#writes;
    await child.send(message).then(() => writes.success(), (err: unknown) => writes.failure(err instanceof Error ? err.message : err));
  }

  #fromChild(message: JSONRPCMessage): void {
    if ('id' in message && message.id !== undefined && ('result' in message || 'error' in message)) {
      this.#inFlight.delete(message.id);
      void this.http.send(message);
      return;
    }
    // Server → client traffic: tie it to the request it belongs to when that can be told, so it travels
    // on that request's stream; otherwise it goes on the session's GET stream.
    const token = (message as { params?: { progressToken?: string | number } }).params?.progressToken;
    let related: RequestId | undefined;
    for (const [id, t] of this.#inFlight) if (token !== undefined && t === token) related = id;
    const only = this.#inFlight.size === 1 ? this.#inFlight.keys().next() : undefined;
    if (related === undefined && only && !only.done) related = only.value;
    void this.http.send(message, related === undefined ? undefined : { relatedRequestId: related });
  }

  async #ensureChild(): Promise<StdioClientTransport> {
    if (this.#child) return this.#child;
    const child = spawnStdio(this.name, this.spec, this.log);
    this.#child = child;
    child.onmessage = (m) => this.#fromChild(m);
    child.onclose = () => this.#childExited(child);
    await child.start();
    return child;
  }

  /** The child died under a live session: fail what was in flight, restart it, replay the handshake. */
  #childExited(child: StdioClientTransport): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    if (this.#closed) return;
    this.log.warn({ mcp: this.name, restarts: this.#restarts }, 'stdio MCP server exited; restarting');
    for (const id of this.#inFlight.keys()) {
      void this.http.send({ jsonrpc: '2.0', id, error: { code: -32603, message: `MCP server '${this.name}' exited while handling this request; it has been restarted` } });
    }
    this.#inFlight.clear();
    const delay = Math.min(100 * 2 ** this.#restarts++, 5000);
    setTimeout(() => { void this.#replayHandshake(); }, delay).unref();
  }

  async #replayHandshake(): Promise<void> {
    if (this.#closed || !this.#initialize) return;
    const child = await this.#ensureChild();
    const init = this.#initialize as JSONRPCMessage & { id: RequestId };
    const replayId = `agentmesh-replay-${randomUUID()}`;
    const answered = new Promise<void>((resolve) => {
      child.onmessage = (m) => {
        if ('id' in m && m.id === replayId) { resolve(); return; }
        this.#fromChild(m);
      };
    });
    await child.send({ ...init, id: replayId });
    await answered;
    child.onmessage = (m) => this.#fromChild(m);
    if (this.#initialized) await child.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    this.#restarts = 0;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.http.close().catch(() => undefined);
    await this.#child?.close().catch(() => undefined);
  }
}

export class StdioBridge {
  readonly #sessions = new Map<string, BridgeSession>();
  readonly #pending = new Set<BridgeSession>();
  readonly #idle: IdleSessions<BridgeSession>;

  constructor(private readonly name: string, private readonly spec: StdioCommand, private readonly log: Logger, idleTimeoutMs: number) {
    this.#idle = new IdleSessions(idleTimeoutMs, (session) => {
      this.log.info({ mcp: this.name, session: session.http.sessionId }, 'closing an idle MCP session (mcp.sessionIdleTimeout)');
      void session.close();
    });
  }

  /** Open sessions (each with its own process once it has been used). */
  get size(): number {
    return this.#sessions.size + this.#pending.size;
  }

  /** Serves one Streamable HTTP request (`body` already parsed for POST); `opened` learns a new session's id. */
  async handle(req: IncomingMessage, res: ServerResponse, body: unknown, opened?: (sessionId: string) => void): Promise<void> {
    const id = req.headers['mcp-session-id'];
    if (typeof id === 'string') {
      const session = this.#sessions.get(id);
      if (!session) {
        return sendError(res, new MeshError('MCP_SESSION_NOT_FOUND', `no MCP session '${id}' on server '${this.name}' (it ended or the sidecar restarted)`), { style: 'jsonrpc' });
      }
      // A request in flight or an open GET stream keeps the session from going idle.
      res.once('close', this.#idle.hold(session));
      return session.http.handleRequest(req, res, body);
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      return sendError(res, new MeshError('INVALID_REQUEST', 'expected an initialize request to start an MCP session (no Mcp-Session-Id header)'), { style: 'jsonrpc' });
    }
    const session = new BridgeSession(this.name, this.spec, this.log,
      (sid, s) => {
        this.#sessions.set(sid, s);
        this.#pending.delete(s);
        this.#idle.add(s);
        res.once('close', this.#idle.hold(s)); // the initialize itself is in flight
        opened?.(sid);
      },
      (sid) => {
        const s = this.#sessions.get(sid);
        this.#sessions.delete(sid);
        if (s) this.#idle.delete(s);
      });
    this.#pending.add(session);
    try {
      await session.http.handleRequest(req, res, body);
    } finally {
      // An initialize the transport refused leaves a session that never got an id: end it now.
      if (this.#pending.delete(session)) void session.close();
    }
  }

  async close(): Promise<void> {
    this.#idle.close();
    const all = [...this.#sessions.values(), ...this.#pending];
    this.#sessions.clear();
    this.#pending.clear();
    await Promise.allSettled(all.map((s) => s.close()));
  }
}
