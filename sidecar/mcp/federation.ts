// The federated MCP endpoint (`/mcp` on the outbound listener). Loads the MCP SDK and the server itself
// (federation-server.ts) on the first request, so a sidecar whose agent never uses `/mcp` does not carry them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import type { RegistryView } from '../../registry/index.ts';
import type { Logger } from '../log.ts';

export interface Federation {
  handle(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void>;
  close(): Promise<void>;
}

export function createFederation(options: { view: RegistryView; outboundUrl: () => string; log: Logger }): Federation {
  let server: Promise<Federation> | undefined;
  let closed = false;
  const load = (): Promise<Federation> => {
    if (!server) {
      server = import('./federation-server.ts').then((m) => m.createFederationServer(options));
      server.catch(() => { server = undefined; }); // a failed load is tried again on the next request
    }
    return server;
  };
  return {
    async handle(req, res, body) {
      if (closed) throw new MeshError('SHUTTING_DOWN', 'the sidecar is shutting down');
      await (await load()).handle(req, res, body);
    },
    async close() {
      closed = true;
      await (await server?.catch(() => undefined))?.close();
    },
  };
}
