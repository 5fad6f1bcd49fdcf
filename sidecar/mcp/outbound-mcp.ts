// The agent-facing MCP routes: `/mcp/{server}` passed through unchanged to the sidecar that owns the
// server (an MCP session stays on the instance that created it), `/mcp` for the federated server, and
// `/registry/mcp`. The Host/Origin guard for these routes is http/outbound-guard.ts, in front of every route.
// A session's owner is forgotten when the session has been idle for mcp.sessionIdleTimeout or its
// instance left the registry.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import type { McpRecord, RegistryView } from '../../registry/index.ts';
import { forwardHeaders, parseJsonBody, readBody } from '../http/http-util.ts';
import type { PeerPools } from '../transport/peers.ts';
import { resilientForward } from '../resilience/resilient-forward.ts';
import type { ResilienceState } from '../resilience/state.ts';
import type { Federation } from './federation.ts';
import { nextHop } from '../resilience/hop-budget.ts';
import { CHAIN_HEADER, DEADLINE_HEADER, HOPS_HEADER, REQUEST_ID_HEADER } from '../../sdk/mesh-headers.ts';
import { mcpPolicyFacts, type PolicyGate } from '../policy/policy-gate.ts';
import type { RequestContext } from '../request-context.ts';
import type { MeshUsers } from '../users/mesh-users.ts';
import type { ListenStreams } from '../http/listen-streams.ts';
import { IdleSessions } from './idle-sessions.ts';
import { admitToolCall } from '../tools/admit-call.ts';
import type { ToolGuard } from '../tools/tool-guard.ts';
import { withTraceHeaders } from '../observe/call-trace.ts';

const MAX_TRACKED_SESSIONS = 10_000;
/** MCP methods that only read: safe to retry after they were sent. */
const READ_ONLY_METHODS = new Set(['ping', 'tools/list', 'resources/list', 'resources/templates/list', 'resources/read', 'prompts/list', 'prompts/get', 'completion/complete']);
/** MCP methods named in logs and metrics; anything else is 'other' (a caller cannot grow the label set). */
export const KNOWN_METHODS = new Set([...READ_ONLY_METHODS, 'initialize', 'tools/call', 'resources/subscribe', 'resources/unsubscribe', 'logging/setLevel',
  'notifications/initialized', 'notifications/cancelled', 'notifications/progress', 'notifications/roots/list_changed']);

interface McpMessage { method?: unknown; id?: unknown; params?: { name?: unknown; arguments?: unknown } }

/** Reads a POSTed MCP message (once) into the request context: method, tool, JSON-RPC id. */
export function readMcpRequest(body: Buffer | undefined, httpMethod: string, ctx: RequestContext): McpMessage | undefined {
  ctx.method = `MCP ${httpMethod}`;
  if (!body) return undefined;
  let message: McpMessage;
  try {
    message = (parseJsonBody(body) ?? {}) as McpMessage;
  } catch {
    return undefined; // the MCP server answers a malformed body itself
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return undefined;
  if (typeof message.id === 'string' || typeof message.id === 'number') ctx.rpcId = message.id;
  if (typeof message.method === 'string') ctx.method = KNOWN_METHODS.has(message.method) ? message.method : 'other';
  if (message.method === 'tools/call' && typeof message.params?.name === 'string') ctx.tool = message.params.name.slice(0, 128);
  return message;
}

/** Whether a POSTed MCP message may be retried: a read-only method, or a tool annotated read-only or idempotent. */
function isIdempotentMcp(message: McpMessage | undefined, record: McpRecord): boolean {
  if (typeof message?.method !== 'string') return false;
  if (READ_ONLY_METHODS.has(message.method)) return true;
  if (message.method !== 'tools/call') return false;
  const tool = record.tools.find((t) => t.name === message.params?.name);
  const hints = (tool?.annotations ?? {}) as { readOnlyHint?: unknown; idempotentHint?: unknown };
  return hints.readOnlyHint === true || hints.idempotentHint === true;
}

/** What a federated tool call carries on to `/mcp/{server}` from the agent's request: its credential and mesh context. */
const FEDERATED_HEADERS = ['authorization', CHAIN_HEADER, HOPS_HEADER, DEADLINE_HEADER, 'traceparent', 'tracestate'] as const;

function federatedHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FEDERATED_HEADERS) {
    const value = req.headers[name];
    if (typeof value === 'string' && value !== '') out[name] = value;
  }
  return out;
}

export interface OutboundMcpDeps {
  resilience: ResilienceState;
  hops: { maxHops: number; timeout: (target: string) => number };
  view: RegistryView;
  peers: PeerPools;
  federation: Federation;
  maxBody: number;
  /** limits.maxJsonDepth */
  maxJsonDepth: number;
  /** limits.maxSseEvent */
  maxSseEvent: number;
  listenStreams: ListenStreams;
  /** Request headers never sent to the next hop (http/credential-headers.ts). */
  dropHeaders: ReadonlySet<string>;
  /** mcp.sessionIdleTimeout: how long an unused session's owner is remembered. */
  sessionIdleTimeoutMs: number;
  /** Tool integrity (tools/): which instances a tools/call may reach. */
  tools?: ToolGuard | undefined;
  /** End user and delegation chain (users/). */
  users: MeshUsers;
  policy: PolicyGate;
}

export function outboundMcp(deps: OutboundMcpDeps) {
  /** MCP session id → the record of the instance that created it. */
  const sessions = new Map<string, McpRecord>();
  const idle = new IdleSessions<string>(deps.sessionIdleTimeoutMs, (id) => sessions.delete(id));
  const forget = (id: string): void => { sessions.delete(id); idle.delete(id); };
  let cursor = 0;

  function pick(server: string, sessionId: string | undefined): McpRecord {
    const instances = deps.view.mcpInstances(server);
    if (instances.length === 0) {
      throw new MeshError('MCP_SERVER_NOT_FOUND', `MCP server '${server}' not found in the mesh`, { details: { server } });
    }
    if (sessionId) {
      const owner = sessions.get(sessionId);
      const live = owner && instances.find((r) => r.instance === owner.instance);
      if (live) return live;
    }
    return instances[cursor++ % instances.length] ?? (instances[0] as McpRecord);
  }

  return {
    /** POST | GET | DELETE /mcp/{server}: a transparent pass-through to the owning sidecar. */
    async server(req: IncomingMessage, res: ServerResponse, name: string, search: string, ctx: RequestContext): Promise<void> {
      const sessionId = typeof req.headers['mcp-session-id'] === 'string' ? req.headers['mcp-session-id'] : undefined;
      const body = req.method === 'POST' ? await readBody(req, deps.maxBody, deps.maxJsonDepth) : undefined;
      const message = readMcpRequest(body, req.method ?? 'GET', ctx);
      await deps.users.outbound(req, ctx);
      deps.policy.check(ctx, mcpPolicyFacts(ctx, body, message));
      const admitted = await admitToolCall(deps.tools, name, ctx, body, deps.view.mcpInstances(name));
      const owner = pick(name, sessionId);
      if (sessionId) res.once('close', idle.hold(sessionId));
      if (req.method === 'GET') deps.listenStreams.track(res);
      // Each made once per call, not once per reader (hop limit, delegation budget, upstream errors; balancer, budget, retries).
      const target = `MCP server '${name}'`;
      const key = `mcp/${name}`;
      const hop = nextHop(req.headers, deps.hops.maxHops, deps.hops.timeout(name), target);
      ctx.hops = hop.hops;
      ctx.timeoutMs = hop.timeoutMs;
      const delegated = await deps.users.hopHeaders(ctx, deps.view.mcpInstances(name), target);
      await resilientForward({
        candidates: admitted ? () => admitted(deps.view.mcpInstances(name)) : () => deps.view.mcpInstances(name),
        // An MCP session lives on the instance that created it: such calls never move.
        ...(sessionId ? { preferred: owner.instance, pinned: true } : {}),
        idempotent: isIdempotentMcp(message, owner),
        retry: deps.resilience.retry(name),
        balancer: deps.resilience.balancer(key, name),
        budget: deps.resilience.budget(key, name),
        dispatcher: (record) => deps.peers.get(record.endpoint, record.identity),
        request: {
          method: req.method ?? 'GET',
          path: `/mcp/${name}${search}`,
          headers: withTraceHeaders(forwardHeaders(req.headers, req.method === 'GET'
            ? { [HOPS_HEADER]: String(hop.hops), ...delegated, [REQUEST_ID_HEADER]: ctx.requestId }
            : { ...hop.headers, ...delegated, [REQUEST_ID_HEADER]: ctx.requestId }, deps.dropHeaders), ctx),
          ...(body ? { body } : {}),
          // The GET stream only listens: it has no deadline of its own.
          ...(req.method === 'GET' ? {} : { timeoutMs: hop.timeoutMs }),
          maxSseEvent: deps.maxSseEvent, errorContext: ctx,
        },
        target,
        onRetry: (reason) => {
          ctx.retries++;
          deps.resilience.onRetry(key, reason);
        },
        onResponse: (record, status, headers) => {
          const created = headers['mcp-session-id'];
          if (typeof created === 'string' && status < 300 && !sessions.has(created)) {
            if (sessions.size >= MAX_TRACKED_SESSIONS) forget(sessions.keys().next().value ?? '');
            sessions.set(created, record);
            idle.add(created);
            res.once('close', idle.hold(created));
          }
          if (req.method === 'DELETE' && sessionId) forget(sessionId);
        },
      }, res);
    },

    /**
     * POST | GET | DELETE /mcp: the federated server, for the end user and chain the agent acts for (verified
     * here as on `/mcp/{server}`; its tool calls take that route with the same credentials).
     */
    async federated(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
      const raw = req.method === 'POST' ? await readBody(req, deps.maxBody, deps.maxJsonDepth) : undefined;
      await deps.users.outbound(req, ctx);
      if (req.method === 'GET') deps.listenStreams.track(res);
      await deps.federation.handle(req, res, parseJsonBody(raw), { user: ctx.user, via: ctx.chain, headers: federatedHeaders(req) });
    },

    /** Forgets sessions whose instance left the registry; `live` maps `mcp/{server}` to its live instances. */
    retain(live: ReadonlyMap<string, ReadonlySet<string>>): void {
      for (const [id, record] of sessions) if (!live.get(`mcp/${record.name}`)?.has(record.instance)) forget(id);
    },

    /** Sessions whose owner is remembered, for /api/state. */
    sessions: () => sessions.size,

    close(): void {
      idle.close();
      sessions.clear();
    },

    /** GET /registry/mcp: every MCP server in the mesh with its instances and tools. */
    list() {
      const byName = new Map<string, McpRecord[]>();
      for (const r of deps.view.mcpServers()) if (deps.policy.mayReach('mcp', r.name)) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
      return [...byName].map(([name, list]) => ({
        name,
        tools: (list[0]?.tools ?? []).filter((t) => deps.policy.mayCallTool(name, t.name)).map((t) => (deps.tools && list[0] ? { ...t, integrity: deps.tools.status(list[0], t) } : t)),
        instances: list.map((r) => ({ instance: r.instance, identity: r.identity, endpoint: r.endpoint, labels: r.labels, startedAt: r.startedAt, heartbeatAt: r.heartbeatAt })),
      }));
    },
  };
}
