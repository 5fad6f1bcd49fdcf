// The federated MCP server behind `/mcp` (loaded by federation.ts on first use): one MCP server holding
// the tools of every MCP server in the mesh, named `{server}__{tool}`. Listing reads the registry; a call
// goes to the owner through this sidecar's own `/mcp/{server}` route, with progress and cancellation forwarded
// and the caller's credentials (bearer or chain token) and mesh headers, so the policy sees its user and chain.
// Sessions and upstream clients idle for mcp.sessionIdleTimeout are closed (an upstream with a DELETE).
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, isInitializeRequest, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { ERROR_CATALOG, MeshError } from '../../sdk/errors.ts';
import { sendError } from '../http/respond.ts';
import type { Federation, FederatedCaller, FederationOptions } from './federation.ts';
import { IdleSessions } from './idle-sessions.ts';
import { didYouMean } from '../suggest.ts';

/** Federated names are `{server}__{tool}`; server names cannot contain `__`, so the first `__` splits. */
export const SEPARATOR = '__';
const PAGE_SIZE = 100;
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
/** SEP-986: tool names are 1–128 characters from [A-Za-z0-9_.-]. */
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

export function createFederationServer(options: FederationOptions): Federation {
  const { view, log, policy } = options;
  const sessions = new Map<string, { server: Server; transport: StreamableHTTPServerTransport }>();
  /** The caller of the `/mcp` request being handled (its handlers run in that request's async context). */
  const callers = new AsyncLocalStorage<FederatedCaller>();
  /** Headers the upstream requests of one tool call carry (its caller's): session plumbing carries none. */
  const forwarding = new AsyncLocalStorage<Readonly<Record<string, string>>>();
  const upstreams = new Map<string, Promise<Client>>();
  const idleSessions = new IdleSessions<string>(options.sessionIdleTimeoutMs, (id) => {
    log.info({ session: id }, 'closing an idle federated MCP session (mcp.sessionIdleTimeout)');
    void sessions.get(id)?.server.close().catch(() => undefined);
  });
  // An upstream client keeps a GET stream open on the owner: only closing it lets the owner's session end.
  const idleUpstreams = new IdleSessions<string>(options.sessionIdleTimeoutMs, (name) => dropUpstream(name));

  /** Ends the session this sidecar holds on server `name` (a DELETE, then the client closes). */
  function dropUpstream(name: string): void {
    const client = upstreams.get(name);
    upstreams.delete(name);
    idleUpstreams.delete(name);
    void client?.then(async (c) => {
      await (c.transport as StreamableHTTPClientTransport | undefined)?.terminateSession().catch(() => undefined);
      await c.close();
    }).catch(() => undefined);
  }

  /** On a Unix-socket outbound listener: undici's fetch through an Agent bound to the socket (loaded then only). */
  let socketFetch: Promise<{ fetch: FetchLike; close: () => Promise<void> }> | undefined;

  /** The URL and fetch that reach this sidecar's own `/mcp/{name}` route. */
  async function selfRoute(name: string): Promise<{ url: URL; fetch?: FetchLike }> {
    const base = options.outboundUrl();
    if (!base.startsWith('unix:')) return { url: new URL(`${base}/mcp/${name}`) };
    socketFetch ??= import('undici').then(({ Agent, fetch }) => {
      const dispatcher = new Agent({ connect: { socketPath: base.slice('unix:'.length) } });
      const viaSocket = ((url: string | URL, init?: RequestInit) => fetch(url, { ...(init as object), dispatcher })) as unknown as FetchLike;
      return { fetch: viaSocket, close: () => dispatcher.close() };
    });
    return { url: new URL(`http://localhost/mcp/${name}`), fetch: (await socketFetch).fetch };
  }

  /** Every tool in the mesh, one entry per server name (the first live instance's list), sorted; `who` may call each. */
  function meshTools(who?: FederatedCaller): Tool[] {
    const as = who && { user: who.user, via: who.via };
    const seen = new Set<string>();
    const tools: Tool[] = [];
    for (const record of [...view.mcpServers()].sort((a, b) => a.name.localeCompare(b.name))) {
      if (seen.has(record.name) || record.name.includes(SEPARATOR)) continue;
      seen.add(record.name);
      for (const tool of record.tools) {
        if (policy && !policy.mayCallTool(record.name, tool.name, as)) continue;
        const name = `${record.name}${SEPARATOR}${tool.name}`;
        if (!TOOL_NAME.test(name)) {
          log.warn({ mcp: record.name, tool: tool.name }, 'left out a tool whose federated name is not a valid MCP tool name');
          continue;
        }
        tools.push({ ...tool, name, inputSchema: tool.inputSchema ?? { type: 'object' } } as Tool);
      }
    }
    return tools;
  }

  let signature = JSON.stringify(meshTools());
  /** Tells every session its tool list changed: `always` for a new policy, which may change what one user sees only. */
  const toolsChanged = (always = false) => {
    const next = JSON.stringify(meshTools());
    if (next === signature && !always) return;
    signature = next;
    for (const { server } of sessions.values()) void server.sendToolListChanged().catch(() => undefined);
  };
  const unsubscribe = view.onChange(() => toolsChanged());
  const unsubscribePolicy = policy?.onChange(() => toolsChanged(true));

  function upstream(name: string): Promise<Client> {
    let client = upstreams.get(name);
    if (!client) {
      const created = (async () => {
        const c = new Client({ name: 'agentmesh-federation', version: '0.1.0' });
        c.onclose = () => { if (upstreams.get(name) === created) { upstreams.delete(name); idleUpstreams.delete(name); } };
        const route = await selfRoute(name);
        const base: FetchLike = route.fetch ?? fetch;
        const withCaller: FetchLike = (url, init) => {
          const extra = forwarding.getStore();
          if (!extra) return base(url, init);
          const headers = new Headers(init?.headers);
          for (const [key, value] of Object.entries(extra)) headers.set(key, value);
          return base(url, { ...init, headers });
        };
        await c.connect(new StreamableHTTPClientTransport(route.url, { fetch: withCaller }));
        return c;
      })();
      client = created;
      upstreams.set(name, created);
      idleUpstreams.add(name);
      void created.finally(idleUpstreams.hold(name)).catch(() => undefined); // connecting is not idle
      created.catch(() => { if (upstreams.get(name) === created) { upstreams.delete(name); idleUpstreams.delete(name); } });
    }
    return client;
  }

  /** The owner and tool of a federated name; errors suggest only tools `who` may call. */
  function resolveTool(full: string, who: FederatedCaller | undefined): { server: string; tool: string } {
    const at = full.indexOf(SEPARATOR);
    if (at <= 0) throw new McpError(ErrorCode.InvalidParams, `unknown tool '${full}': federated tool names are {server}${SEPARATOR}{tool}${didYouMean(full, meshTools(who).map((t) => t.name))}`);
    const server = full.slice(0, at);
    const tool = full.slice(at + SEPARATOR.length);
    const instances = view.mcpInstances(server);
    if (instances.length === 0) throw new McpError(ErrorCode.InvalidParams, `unknown tool '${full}': MCP server '${server}' is not in the mesh${didYouMean(full, meshTools(who).map((t) => t.name))}`);
    if (!instances.some((r) => r.tools.some((t) => t.name === tool))) {
      throw new McpError(ErrorCode.InvalidParams, `unknown tool '${full}': MCP server '${server}' has no tool '${tool}'${didYouMean(full, meshTools(who).map((t) => t.name))}`);
    }
    return { server, tool };
  }

  function newSession(res: ServerResponse): { server: Server; transport: StreamableHTTPServerTransport } {
    const server = new Server({ name: 'agentmesh', version: '0.1.0' }, { capabilities: { tools: { listChanged: true } } });
    server.setRequestHandler(ListToolsRequestSchema, async (request) => {
      const tools = meshTools(callers.getStore());
      const start = request.params?.cursor ? Number.parseInt(Buffer.from(request.params.cursor, 'base64url').toString(), 10) : 0;
      if (!Number.isInteger(start) || start < 0 || start > tools.length) throw new McpError(ErrorCode.InvalidParams, 'invalid cursor');
      const end = start + PAGE_SIZE;
      return { tools: tools.slice(start, end), ...(end < tools.length ? { nextCursor: Buffer.from(String(end)).toString('base64url') } : {}) };
    });
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      const caller = callers.getStore();
      const { server: owner, tool } = resolveTool(request.params.name, caller);
      const client = await upstream(owner);
      const release = idleUpstreams.hold(owner);
      const progressToken = request.params._meta?.progressToken;
      try {
        return await forwarding.run(caller?.headers ?? NO_HEADERS, () => client.callTool({ name: tool, ...(request.params.arguments ? { arguments: request.params.arguments } : {}) }, undefined, {
          signal: extra.signal,
          timeout: 10 * 60_000,
          ...(progressToken === undefined ? {} : {
            resetTimeoutOnProgress: true,
            onprogress: (p) => { void extra.sendNotification({ method: 'notifications/progress', params: { ...p, progressToken } }); },
          }),
        }));
      } catch (err) {
        const refused = policyRefusal(err);
        if (refused) throw refused; // the session is fine: the policy refused this one call
        if (!(err instanceof McpError)) dropUpstream(owner);
        throw err;
      } finally {
        release();
      }
    });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { server, transport });
        idleSessions.add(id);
        res.once('close', idleSessions.hold(id)); // the initialize itself is in flight
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) { sessions.delete(transport.sessionId); idleSessions.delete(transport.sessionId); }
    };
    return { server, transport };
  }

  /** One request to `/mcp`: to its session, or a new session for an initialize. */
  async function handleRequest(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const id = req.headers['mcp-session-id'];
    if (typeof id === 'string') {
      const session = sessions.get(id);
      if (!session) return sendError(res, new MeshError('MCP_SESSION_NOT_FOUND', `no MCP session '${id}' on the federated endpoint`), { style: 'jsonrpc' });
      res.once('close', idleSessions.hold(id));
      return session.transport.handleRequest(req, res, body);
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      return sendError(res, new MeshError('INVALID_REQUEST', 'expected an initialize request to start an MCP session (no Mcp-Session-Id header)'), { style: 'jsonrpc' });
    }
    const session = newSession(res);
    await session.server.connect(session.transport);
    await session.transport.handleRequest(req, res, body);
  }

  return {
    handle(req, res, body, caller) {
      return callers.run(caller ?? { headers: NO_HEADERS }, () => handleRequest(req, res, body));
    },
    retain(servers) {
      for (const name of [...upstreams.keys()]) if (!servers.has(name)) dropUpstream(name);
    },
    counts: () => ({ sessions: sessions.size, upstreams: upstreams.size }),
    async close() {
      unsubscribe();
      idleSessions.close();
      idleUpstreams.close();
      unsubscribePolicy?.();
      const all = [...sessions.values()];
      sessions.clear();
      await Promise.allSettled(all.map((s) => s.server.close()));
      const clients = [...upstreams.values()];
      upstreams.clear();
      await Promise.allSettled(clients.map(async (c) => (await c).close()));
      await (await socketFetch?.catch(() => undefined))?.close();
    },
  };
}

/**
 * The mesh policy's refusal of a call on this sidecar's own `/mcp/{server}` route (HTTP 403 with a
 * JSON-RPC error -32060, which the MCP client reports as a transport error) as the same MCP error.
 */
function policyRefusal(err: unknown): McpError | undefined {
  if (!(err instanceof StreamableHTTPError) || err.code !== ERROR_CATALOG.POLICY_DENIED.http) return undefined;
  try {
    const body = JSON.parse(err.message.slice(err.message.indexOf('{'))) as { error?: { code?: unknown; message?: unknown; data?: unknown } };
    const { code, message, data } = body.error ?? {};
    if (code !== ERROR_CATALOG.POLICY_DENIED.rpc || typeof message !== 'string') return undefined;
    return new McpError(code, message, data);
  } catch {
    return undefined;
  }
}
