// The mesh-facing listener's routes (mTLS only): verifies the caller's SPIFFE identity, replaces any
// x-agentmesh-caller it sent with the verified one, and forwards to the local agent.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { MeshError } from '../../sdk/errors.ts';
import type { Binding } from '../a2a/agent-card.ts';
import { forwardHeaders, readBody } from './http-util.ts';
import { verifyClientPeer } from '../identity/index.ts';
import { forward } from '../transport/proxy.ts';
import { sendError, type ErrorContext } from './respond.ts';
import { parseRoute } from './routes.ts';
import { arrivingBudget } from '../resilience/hop-budget.ts';
import { dedupKey, MESSAGE_ID_HEADER, MessageDedup, recorder, replay } from '../a2a/dedup.ts';
import { restMethod, trackRequest, type Metrics } from '../metrics.ts';
import type { ListenStreams } from './listen-streams.ts';
import { serveStdio, type LocalMcpServer } from '../mcp/local-servers.ts';

/** The local agent as the inbound side sees it: its registry name and where each binding is served. */
export interface LocalAgent {
  name: string;
  endpoints: Partial<Record<Binding, URL>>;
  dispatcher: Dispatcher;
}

export interface InboundDeps {
  dedup: MessageDedup;
  metrics: Metrics;
  trustDomain: string;
  /** The MCP servers this sidecar fronts. */
  mcp: (name: string) => LocalMcpServer | undefined;
  listenStreams: ListenStreams;
  /** The local agent once its card has been read; undefined before that or when there is none. */
  localAgent: () => LocalAgent | undefined;
  maxBody: number;
  log: Logger;
}

/** The deadline the calling sidecar sent: the local call is aborted when it runs out. */
function budget(req: IncomingMessage): { timeoutMs?: number } {
  const ms = arrivingBudget(req.headers);
  return ms === undefined ? {} : { timeoutMs: ms };
}

export function inboundHandler(deps: InboundDeps) {
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = parseRoute(req.url ?? '/');
    const ctx: ErrorContext = { style: route.kind === 'a2a' && route.rest === '' ? 'jsonrpc' : 'json' };
    const labels = trackRequest(deps.metrics, 'inbound', res);
    if (route.kind === 'a2a') Object.assign(labels, { target: route.name, method: route.rest === '' ? 'JSON-RPC' : restMethod(route.rest) });
    if (route.kind === 'mcp') Object.assign(labels, { target: route.name ?? '-', method: `MCP ${req.method ?? ''}` });
    try {
      const caller = verifyClientPeer(req.socket as TLSSocket, deps.trustDomain);
      if (route.kind === 'mcp' && route.name !== undefined) {
        ctx.style = 'jsonrpc';
        return await serveMcp(req, res, route.name, route.search, caller);
      }
      if (route.kind !== 'a2a') throw new MeshError('ROUTE_NOT_FOUND', `no route for ${req.method} ${route.path}`);
      const agent = deps.localAgent();
      if (!agent || agent.name !== route.name) {
        throw new MeshError('AGENT_NOT_FOUND', `agent '${route.name}' is not served by this sidecar`, { details: { agent: route.name } });
      }
      const binding: Binding = route.rest === '' ? 'JSONRPC' : 'HTTP+JSON';
      const target = agent.endpoints[binding];
      if (!target) throw new MeshError('ROUTE_NOT_FOUND', `agent '${agent.name}' does not serve the ${binding} binding`);
      const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readBody(req, deps.maxBody);
      const basePath = target.pathname.replace(/\/$/, '');
      const key = binding === 'JSONRPC' ? dedupKey(caller, agent.name, req.headers[MESSAGE_ID_HEADER], body) : undefined;
      const earlier = key ? deps.dedup.previous(key) : undefined;
      const first = earlier ? await earlier : undefined;
      if (first) return replay(res, first);
      const record = key ? recorder(deps.dedup.begin(key)) : undefined;
      await forward({
        dispatcher: agent.dispatcher,
        origin: target.origin,
        method: req.method ?? 'GET',
        path: `${basePath}${route.rest}${route.search}` || '/',
        headers: forwardHeaders(req.headers, { 'x-agentmesh-caller': caller, host: target.host }),
        ...(body ? { body } : {}),
        target: `local agent '${agent.name}'`,
        ...budget(req),
        ...(record ? { onResponse: (status: number, headers: Record<string, string | string[] | undefined>) => record.head(status, headers), observe: record } : {}),
      }, res);
    } catch (err) {
      sendError(res, err, ctx);
    }
  };

  /** Streamable HTTP to a local MCP server, unchanged: session and protocol headers pass through. */
  async function serveMcp(req: IncomingMessage, res: ServerResponse, name: string, search: string, caller: string): Promise<void> {
    const server = deps.mcp(name);
    if (!server) throw new MeshError('MCP_SERVER_NOT_FOUND', `MCP server '${name}' is not served by this sidecar`, { details: { server: name } });
    const body = req.method === 'POST' ? await readBody(req, deps.maxBody) : undefined;
    if (req.method === 'GET') deps.listenStreams.track(res);
    if (server.kind === 'stdio') {
      req.headers['x-agentmesh-caller'] = caller;
      return serveStdio(server, req, res, body);
    }
    await forward({
      dispatcher: server.dispatcher,
      origin: server.url.origin,
      method: req.method ?? 'GET',
      path: `${server.url.pathname}${search}`,
      headers: forwardHeaders(req.headers, { 'x-agentmesh-caller': caller, host: server.url.host }),
      ...(body ? { body } : {}),
      target: `local MCP server '${name}'`,
      ...budget(req),
    }, res);
  }
}
