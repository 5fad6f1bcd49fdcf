// MCP on the mesh-facing listener: Streamable HTTP from another sidecar (caller already verified) to a
// local MCP server, unchanged — session and protocol headers pass through; stdio servers go to their bridge.
// Each local server has its own admission (adaptive limit, fair share per caller), as the local agent has.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import { CALLER_HEADER, REQUEST_ID_HEADER } from '../../sdk/mesh-headers.ts';
import { forwardHeaders, readBody } from '../http/http-util.ts';
import type { ListenStreams } from '../http/listen-streams.ts';
import type { McpRoute } from '../http/routes.ts';
import { mcpPolicyFacts, type PolicyGate } from '../policy/policy-gate.ts';
import type { RequestContext } from '../request-context.ts';
import { arrivingBudget } from '../resilience/hop-budget.ts';
import type { MeshUsers } from '../users/mesh-users.ts';
import { forward } from '../transport/proxy.ts';
import { serveStdio, type LocalMcpServer } from './local-servers.ts';
import { readMcpRequest } from './outbound-mcp.ts';
import { bindSession, type SessionOwners } from './session-owners.ts';
import { withTraceHeaders } from '../observe/call-trace.ts';
import type { Admission } from '../overload/admission.ts';
import { admitMcp, admitted, beforeForwarding, budgetLeft } from '../overload/admit-call.ts';

export interface InboundMcpDeps {
  /** The MCP servers this sidecar fronts. */
  mcp: (name: string) => LocalMcpServer | undefined;
  /** Which caller opened each MCP session on the pass-through route. */
  sessions: SessionOwners;
  listenStreams: ListenStreams;
  maxBody: number;
  /** limits.maxJsonDepth */
  maxJsonDepth: number;
  /** The delegation chain verified, rate limits, and the user headers for the server (users/). */
  users: MeshUsers;
  policy: PolicyGate;
  /** limits.maxSseEvent */
  maxSseEvent: number;
  /** Overload protection per local MCP server (the same limits as for the local agent, each its own). */
  mcpAdmission?: (server: string) => Admission | undefined;
}

/** MCP messages the calling sidecar may send twice (read-only): their hop token may arrive twice too. */
const MCP_REPEATABLE = new Set(['ping', 'tools/list', 'resources/list', 'resources/templates/list', 'resources/read', 'prompts/list', 'prompts/get', 'MCP GET']);

export function inboundMcp(deps: InboundMcpDeps) {
  async function handle(req: IncomingMessage, res: ServerResponse, route: McpRoute & { name: string }, ctx: RequestContext, caller: string): Promise<void> {
    const name = route.name;
    ctx.target = { kind: 'mcp', name };
    ctx.style = 'jsonrpc';
    ctx.method = `MCP ${req.method ?? ''}`;
    const server = deps.mcp(name);
    if (!server) throw new MeshError('MCP_SERVER_NOT_FOUND', `MCP server '${name}' is not served by this sidecar`, { details: { server: name } });
    const session = bindSession(deps.sessions, name, caller, req, res);
    const body = req.method === 'POST' ? await readBody(req, deps.maxBody, deps.maxJsonDepth) : undefined;
    // The MCP method as the calling sidecar named it in its metrics (tools/call …), from the same reader.
    const message = readMcpRequest(body, req.method ?? 'GET', ctx);
    await deps.users.inbound(req, ctx, MCP_REPEATABLE.has(ctx.method), req.method === 'POST' && !ctx.method.startsWith('notifications/'), res);
    const arriving = arrivingBudget(req.headers);
    deps.policy.check(ctx, mcpPolicyFacts(ctx, body, message));
    // Admitted (or refused) before any costly work; a DELETE ends a session and is never refused for load.
    const sampled = !MCP_REPEATABLE.has(ctx.method) && !ctx.method.startsWith('notifications/');
    const permit = req.method === 'DELETE' ? undefined : await admitMcp(deps.mcpAdmission?.(name), caller, req.method ?? 'GET', sampled, arriving, res);
    const budget = budgetLeft(arriving, ctx);
    const signing = deps.users.agentHeaders(ctx, budget);
    const forServer = signing ? await beforeForwarding(permit, signing) : undefined;
    if (req.method === 'GET') deps.listenStreams.track(res);
    if (server.kind === 'stdio') {
      req.headers[CALLER_HEADER] = caller;
      return admitted(permit, serveStdio(server, req, res, body, session.opened));
    }
    await admitted(permit, forward({
      dispatcher: server.dispatcher,
      origin: server.url.origin,
      method: req.method ?? 'GET',
      path: `${server.url.pathname}${route.search}`,
      headers: withTraceHeaders(forwardHeaders(req.headers, { [CALLER_HEADER]: caller, [REQUEST_ID_HEADER]: ctx.requestId, host: server.url.host, ...forServer }), ctx),
      ...(body ? { body } : {}),
      target: `local MCP server '${name}'`,
      maxSseEvent: deps.maxSseEvent, errorContext: ctx,
      ...(budget === undefined ? {} : { timeoutMs: budget }),
      onResponse: session.onResponse,
    }, res));
  }

  return { handle };
}
