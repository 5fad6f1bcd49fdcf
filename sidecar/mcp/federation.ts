// The federated MCP endpoint (`/mcp` on the outbound listener). Loads the MCP SDK and the server itself
// (federation-server.ts) on the first request, so a sidecar whose agent never uses `/mcp` does not carry them.
// Sessions idle for mcp.sessionIdleTimeout end, and so do the upstream clients of servers that left the mesh.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import type { RegistryView } from '../../registry/index.ts';
import type { Logger } from '../log.ts';
import type { PolicyGate } from '../policy/policy-gate.ts';

/**
 * Who a request to `/mcp` acts for, as the calling side verified it (users/): the end user and chain decide
 * which tools its listing shows, and `headers` (its bearer token or chain token, hops, deadline, trace
 * context) go with each tool call it makes to this sidecar's `/mcp/{server}` route, which checks them again.
 */
export interface FederatedCaller {
  user?: unknown;
  via?: readonly string[] | undefined;
  headers: Readonly<Record<string, string>>;
}

export interface Federation {
  handle(req: IncomingMessage, res: ServerResponse, body: unknown, caller?: FederatedCaller): Promise<void>;
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
  /** tools/list shows only the tools the policy lets this sidecar's agent call (for the user it acts for). */
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
    async handle(req, res, body, caller) {
      if (closed) throw new MeshError('SHUTTING_DOWN', 'the sidecar is shutting down');
      await (await load()).handle(req, res, body, caller);
    },
    retain: (servers) => loaded?.retain(servers),
    counts: () => loaded?.counts() ?? { sessions: 0, upstreams: 0 },
    async close() {
      closed = true;
      await (await server?.catch(() => undefined))?.close();
    },
  };
}
