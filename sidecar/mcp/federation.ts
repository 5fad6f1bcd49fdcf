// The federated MCP endpoint (`/mcp` on the outbound listener). Loads the MCP SDK and the server itself
// (federation-server.ts) on the first request, so a sidecar whose agent never uses `/mcp` does not carry them.
// Sessions idle for mcp.sessionIdleTimeout end, and so do the upstream clients of servers that left the mesh.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import type { RegistryView } from '../../registry/index.ts';
import type { Logger } from '../log.ts';
import type { PolicyGate } from '../policy/policy-gate.ts';

export interface Federation {
  handle(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void>;
  /** Closes the upstream clients of MCP servers not in `servers` (they left the mesh). */
  retain(servers: ReadonlySet<string>): void;
  /** Open sessions: clients of `/mcp`, and upstream clients (one per server in use). */
  counts(): { sessions: number; upstreams: number };
  close(): Promise<void>;
}

export interface FederationOptions {
  view: RegistryView;
  outboundUrl: () => string;
  /** mcp.sessionIdleTimeout: sessions and upstream clients idle this long are closed. */
  sessionIdleTimeoutMs: number;
  log: Logger;
  /** tools/list shows only the tools the policy lets this sidecar's agent call. */
  policy?: Pick<PolicyGate, 'mayCallTool' | 'onChange'>;
}

export function createFederation(options: FederationOptions): Federation {
  let server: Promise<Federation> | undefined;
  let loaded: Federation | undefined;
  let closed = false;
  const load = (): Promise<Federation> => {
    if (!server) {
      server = import('./federation-server.ts').then((m) => (loaded = m.createFederationServer(options)));
      server.catch(() => { server = undefined; }); // a failed load is tried again on the next request
    }
    return server;
  };
  return {
    async handle(req, res, body) {
      if (closed) throw new MeshError('SHUTTING_DOWN', 'the sidecar is shutting down');
      await (await load()).handle(req, res, body);
    },
    retain: (servers) => loaded?.retain(servers),
    counts: () => loaded?.counts() ?? { sessions: 0, upstreams: 0 },
    async close() {
      closed = true;
      await (await server?.catch(() => undefined))?.close();
    },
  };
}
