// The admin listener's routes: liveness, readiness (registry synced and reachable, own agent
// registered) and JSON state for operators. Read-only. The tap WebSocket (/api/tap) is observe/tap.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import type { RegistryView } from '../../registry/index.ts';
import { sendError, sendJson } from './respond.ts';
import type { Metrics } from '../metrics.ts';
import type { DashboardRoutes } from '../dashboard/dashboard-routes.ts';

export interface AdminDeps {
  metrics: Metrics;
  view: RegistryView;
  /** Reasons the sidecar is not ready; empty when it is. */
  notReady: () => string[];
  state: () => Record<string, unknown>;
  dashboard?: DashboardRoutes;
}

export function adminHandler(deps: AdminDeps) {
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const [path = '/', query] = (req.url ?? '/').split('?');
    try {
      if (req.method !== 'GET') throw new MeshError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on the admin listener`);
      if (await deps.dashboard?.(path, new URLSearchParams(query), res)) return;
      switch (path) {
        case '/healthz':
          return sendJson(res, 200, { status: 'ok' });
        case '/readyz': {
          const reasons = deps.notReady();
          return sendJson(res, reasons.length === 0 ? 200 : 503, { status: reasons.length === 0 ? 'ready' : 'not ready', reasons });
        }
        case '/metrics': {
          const text = await deps.metrics.registry.metrics();
          res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
          res.end(text);
          return;
        }
        case '/api/registry':
          return sendJson(res, 200, { agents: deps.view.agents(), mcp: deps.view.mcpServers() });
        case '/api/state':
          return sendJson(res, 200, deps.state());
        case '/api/tap':
          throw new MeshError('INVALID_REQUEST', '/api/tap is a WebSocket: connect with Upgrade: websocket (agentmesh tap)');
        default:
          throw new MeshError('ROUTE_NOT_FOUND', `no admin route ${path}`);
      }
    } catch (err) {
      sendError(res, err, { style: 'json' });
    }
  };
}
