// The agent-facing listener's routes (loopback, plain HTTP): agent cards rewritten to this sidecar,
// A2A JSON-RPC and REST forwarded over mTLS to a live instance of the target, and registry queries.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { MeshError } from '../../sdk/errors.ts';
import type { AgentQuery, AgentRecord, RegistryView } from '../../registry/index.ts';
import { rewriteCard } from '../a2a/agent-card.ts';
import { forwardHeaders, readBody, readEnvelope } from './http-util.ts';
import { PeerPools } from '../transport/peers.ts';
import { resilientForward } from '../resilience/resilient-forward.ts';
import { MESSAGE_ID_HEADER, sendMessageId } from '../a2a/dedup.ts';
import { requestTaskId, restTaskId, sniffTaskId, type TaskAffinity } from '../a2a/task-affinity.ts';
import type { ResilienceState } from '../resilience/state.ts';
import { sendError, sendJson, type ErrorContext } from './respond.ts';
import { parseRoute } from './routes.ts';
import { nextHop } from '../resilience/hop-budget.ts';
import { restMethod, trackRequest, type Metrics, type RequestLabels } from '../metrics.ts';
import type { outboundMcp } from '../mcp/outbound-mcp.ts';

export interface OutboundDeps {
  resilience: ResilienceState;
  affinity: TaskAffinity;
  metrics: Metrics;
  /** limits.maxHops and the per-target deadline. */
  hops: { maxHops: number; timeout: (target: string) => number };
  view: RegistryView;
  mcp: ReturnType<typeof outboundMcp>;
  peers: PeerPools;
  maxBody: number;
  log: Logger;
}

const CARD_PATH = '/.well-known/agent-card.json';
/** Methods that read and never change state: safe to retry after they were sent. */
const IDEMPOTENT = new Set([
  'GetTask', 'ListTasks', 'GetTaskPushNotificationConfig', 'ListTaskPushNotificationConfigs', 'GetExtendedAgentCard',
  'tasks/get', 'tasks/pushNotificationConfig/get', 'tasks/pushNotificationConfig/list',
]);
/** JSON-RPC methods named in metrics (v1.0 and v0.3); anything else is counted as 'other'. */
const A2A_METHODS = new Set([
  'SendMessage', 'SendStreamingMessage', 'GetTask', 'ListTasks', 'CancelTask', 'SubscribeToTask',
  'CreateTaskPushNotificationConfig', 'GetTaskPushNotificationConfig', 'ListTaskPushNotificationConfigs',
  'DeleteTaskPushNotificationConfig', 'GetExtendedAgentCard', 'message/send', 'message/stream', 'tasks/get',
  'tasks/cancel', 'tasks/resubscribe',
]);

export function outboundHandler(deps: OutboundDeps) {
  /** The live instances of an agent, or AGENT_NOT_FOUND naming it. */
  function requireAgent(agent: string): [AgentRecord, ...AgentRecord[]] {
    const instances = deps.view.agentInstances(agent);
    if (instances.length === 0) {
      throw new MeshError('AGENT_NOT_FOUND', `agent '${agent}' not found in the mesh`, { details: { agent } });
    }
    return instances as [AgentRecord, ...AgentRecord[]];
  }

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = parseRoute(req.url ?? '/');
    const ctx: ErrorContext = { style: (route.kind === 'a2a' && route.rest === '') || route.kind === 'mcp' ? 'jsonrpc' : 'json' };
    const labels = trackRequest(deps.metrics, 'outbound', res);
    try {
      switch (route.kind) {
        case 'a2a':
          labels.method = route.rest === '' ? 'JSON-RPC' : restMethod(route.rest);
          if (req.method === 'GET' && route.rest === CARD_PATH) {
            labels.method = 'agent-card';
            return serveCard(req, res, route.name);
          }
          return await forwardA2a(req, res, route.name, route.rest, route.search, ctx, labels);
        case 'registry-agents':
          if (req.method !== 'GET') throw new MeshError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on /registry/agents`);
          return sendJson(res, 200, { agents: queryAgents(route.params) });
        case 'mcp':
          labels.method = `MCP ${req.method ?? ''}`;
          labels.target = route.name ?? '(federated)';
          if (route.name === undefined) return await deps.mcp.federated(req, res);
          return await deps.mcp.server(req, res, route.name, route.search);
        case 'registry-mcp':
          if (req.method !== 'GET') throw new MeshError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on /registry/mcp`);
          return sendJson(res, 200, { servers: deps.mcp.list() });
        case 'unknown':
          throw new MeshError('ROUTE_NOT_FOUND', `no route for ${req.method} ${route.path}`);
        default:
          route satisfies never;
      }
    } catch (err) {
      sendError(res, err, ctx);
    }
  };

  function serveCard(req: IncomingMessage, res: ServerResponse, agent: string): void {
    const [record] = requireAgent(agent);
    sendJson(res, 200, rewriteCard(record.card, routeUrl(req, agent)));
  }

  async function forwardA2a(req: IncomingMessage, res: ServerResponse, agent: string, rest: string, search: string, ctx: ErrorContext, labels: RequestLabels): Promise<void> {
    let body: Buffer | undefined;
    let idempotent = req.method === 'GET';
    let resendOnLoss = false;
    let taskId = restTaskId(rest);
    let messageId: string | undefined;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      body = await readBody(req, deps.maxBody);
      if (rest === '') {
        if (req.method !== 'POST') throw new MeshError('METHOD_NOT_ALLOWED', `use POST for JSON-RPC on /a2a/${agent}`);
        const envelope = readEnvelope(body);
        ctx.rpcId = envelope.id;
        labels.method = A2A_METHODS.has(envelope.method) ? envelope.method : 'other';
        idempotent = IDEMPOTENT.has(envelope.method);
        resendOnLoss = envelope.method === 'SendMessage' || envelope.method === 'message/send';
        taskId = requestTaskId(envelope.method, envelope.params);
        // The receiving sidecar deduplicates SendMessage by this id ('' = not a SendMessage) without re-reading the body.
        messageId = sendMessageId(envelope.method, envelope.params) ?? '';
      }
    }
    requireAgent(agent);
    labels.target = agent;
    const hop = nextHop(req.headers, { maxHops: deps.hops.maxHops, timeoutMs: deps.hops.timeout(agent), target: `agent '${agent}'` });
    await resilientForward({
      candidates: () => deps.view.agentInstances(agent),
      preferred: taskId === undefined ? undefined : await deps.affinity.ownerOf(agent, taskId),
      idempotent,
      resendOnLoss,
      retry: deps.resilience.retry(agent),
      balancer: deps.resilience.balancer(`agent/${agent}`, agent),
      budget: deps.resilience.budget(`agent/${agent}`, agent),
      dispatcher: (record) => deps.peers.get(record.endpoint, record.identity),
      request: {
        method: req.method ?? 'GET',
        path: `/a2a/${agent}${rest}${search}`,
        headers: forwardHeaders(req.headers, messageId === undefined ? hop.headers : { ...hop.headers, [MESSAGE_ID_HEADER]: messageId }),
        ...(body ? { body } : {}),
        timeoutMs: hop.timeoutMs,
      },
      target: `agent '${agent}'`,
      onRetry: (reason) => deps.resilience.onRetry(agent, reason),
      tap: (record, chunk) => {
        const learned = sniffTaskId(chunk);
        if (learned) deps.affinity.remember(agent, learned, record.instance);
      },
    }, res);
  }

  function queryAgents(params: URLSearchParams) {
    const query: AgentQuery = {};
    const name = params.get('name');
    const skill = params.get('skill');
    const tag = params.get('tag');
    if (name) query.name = name;
    if (skill) query.skill = skill;
    if (tag) query.tag = tag;
    const labels: Record<string, string> = {};
    for (const label of params.getAll('label')) {
      const eq = label.indexOf('=');
      if (eq <= 0) throw new MeshError('INVALID_REQUEST', `label filter must be key=value, got '${label}'`);
      labels[label.slice(0, eq)] = label.slice(eq + 1);
    }
    if (Object.keys(labels).length > 0) query.labels = labels;
    return groupByName(deps.view.agents(query));
  }
}

/** Records grouped per agent name, as GET /registry/agents answers (the card is the first instance's). */
function groupByName(records: AgentRecord[]) {
  const byName = new Map<string, AgentRecord[]>();
  for (const r of records) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
  return [...byName].map(([name, list]) => ({
    name,
    card: list[0]?.card,
    labels: list[0]?.labels ?? {},
    instances: list.map((r) => ({
      instance: r.instance, identity: r.identity, endpoint: r.endpoint, labels: r.labels,
      startedAt: r.startedAt, heartbeatAt: r.heartbeatAt,
    })),
  }));
}

/** `http://<host the caller used>/a2a/<agent>`: the route the rewritten card points at. */
function routeUrl(req: IncomingMessage, agent: string): string {
  const host = req.headers.host ?? `${req.socket.localAddress}:${req.socket.localPort}`;
  return `http://${host}/a2a/${agent}`;
}
