// The agent-facing listener's router (loopback, plain HTTP): creates the request context and hands
// A2A routes to a2a/, MCP routes to mcp/, and answers registry queries. Errors are answered here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import type { AgentQuery, AgentRecord, RegistryView } from '../../registry/index.ts';
import { outboundA2a, type OutboundA2aDeps } from '../a2a/outbound-a2a.ts';
import type { Logger } from '../log.ts';
import type { outboundMcp } from '../mcp/outbound-mcp.ts';
import { trackRequest, type Metrics } from '../metrics.ts';
import type { CallObserver } from '../observe/call-observer.ts';
import { RequestContext } from '../request-context.ts';
import type { CallAudit } from '../audit/call-audit.ts';
import { sendError, sendJson } from './respond.ts';
import { parseRoute } from './routes.ts';
import { routeHint } from './route-hints.ts';

export interface OutboundDeps extends OutboundA2aDeps {
  /** The audit writer (audit.enabled); one record per call when the response closes. */
  audit?: CallAudit | undefined;
  metrics: Metrics;
  /** Tracing, access log and tap (observe/). */
  observer?: CallObserver;
  view: RegistryView;
  mcp: ReturnType<typeof outboundMcp>;
  log: Logger;
}

export function outboundHandler(deps: OutboundDeps) {
  const a2a = outboundA2a(deps);
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ctx = new RequestContext('outbound', req, deps.log);
    deps.observer?.begin(ctx, req);
    trackRequest(deps.metrics, ctx, res, deps.audit, deps.observer);
    try {
      const route = parseRoute(req.url ?? '/');
      switch (route.kind) {
        case 'a2a':
          return await a2a.handle(req, res, route, ctx);
        case 'registry-agents':
          ctx.method = 'registry';
          if (req.method !== 'GET') throw new MeshError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on /registry/agents`);
          return sendJson(res, 200, { agents: queryAgents(route.params) });
        case 'mcp':
          ctx.style = 'jsonrpc';
          ctx.method = `MCP ${req.method ?? ''}`;
          if (route.name === undefined) return await deps.mcp.federated(req, res, ctx);
          ctx.target = { kind: 'mcp', name: route.name };
          return await deps.mcp.server(req, res, route.name, route.search, ctx);
        case 'registry-mcp':
          ctx.method = 'registry';
          if (req.method !== 'GET') throw new MeshError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on /registry/mcp`);
          return sendJson(res, 200, { servers: deps.mcp.list() });
        case 'unknown':
          throw new MeshError('ROUTE_NOT_FOUND', `no route for ${req.method} ${route.path}${routeHint(route.path)}`);
        default:
          route satisfies never;
      }
    } catch (err) {
      sendError(res, err, ctx);
    }
  };

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
    return groupByName(deps.view.agents(query).filter((r) => deps.policy.mayReach('agent', r.name)));
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
