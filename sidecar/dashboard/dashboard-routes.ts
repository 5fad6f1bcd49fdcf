// The admin listener's dashboard routes: the page (GET /), its files, and the JSON it reads beside
// /api/registry and /api/state: /api/edges, /api/overview and /api/calls (live calls without the tap).
import type { ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { MeshError } from '../../sdk/errors.ts';
import { sendJson } from '../http/respond.ts';
import { serveAsset } from './assets.ts';
import { EdgeRates } from './edges.ts';
import { overview } from './overview.ts';
import type { RecentCalls } from './recent-calls.ts';

/** Answers a dashboard path and resolves true, or resolves false for the admin handler's other routes. */
export type DashboardRoutes = (path: string, query: URLSearchParams, res: ServerResponse) => Promise<boolean>;

export function dashboardRoutes(deps: { registry: Registry; recent: RecentCalls; self: () => string }): DashboardRoutes {
  const edges = new EdgeRates(deps.registry, deps.self);
  return async (path, query, res) => {
    switch (path) {
      case '/api/edges':
        sendJson(res, 200, { edges: await edges.edges() });
        return true;
      case '/api/overview':
        sendJson(res, 200, await overview(deps.registry));
        return true;
      case '/api/calls': {
        const raw = query.get('after') ?? '0';
        const after = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
        if (Number.isNaN(after)) throw new MeshError('INVALID_REQUEST', `/api/calls: 'after' is a call sequence number (0 or more), got '${raw.slice(0, 40)}'`);
        sendJson(res, 200, deps.recent.after(after));
        return true;
      }
      default:
        return serveAsset(path, res);
    }
  };
}
