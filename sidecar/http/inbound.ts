// The mesh-facing listener's router (mTLS only): creates the request context, verifies the caller's
// SPIFFE identity, and hands A2A calls to a2a/ and MCP calls to mcp/. Errors are answered here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { MeshError } from '../../sdk/errors.ts';
import { inboundA2a, type InboundA2aDeps } from '../a2a/inbound-a2a.ts';
import { verifyClientPeer } from '../identity/index.ts';
import type { Logger } from '../log.ts';
import { inboundMcp, type InboundMcpDeps } from '../mcp/inbound-mcp.ts';
import { trackRequest, type Metrics } from '../metrics.ts';
import type { CallObserver } from '../observe/call-observer.ts';
import { RequestContext } from '../request-context.ts';
import type { CallAudit } from '../audit/call-audit.ts';
import { sendError } from './respond.ts';
import { parseRoute } from './routes.ts';

export interface InboundDeps extends InboundA2aDeps, InboundMcpDeps {
  /** The audit writer (audit.enabled); one record per call when the response closes. */
  audit?: CallAudit | undefined;
  metrics: Metrics;
  /** Tracing, access log and tap (observe/). */
  observer?: CallObserver;
  trustDomain: string;
  log: Logger;
}

export function inboundHandler(deps: InboundDeps) {
  const a2a = inboundA2a(deps);
  const mcp = inboundMcp(deps);
  // Not async: an async frame and an await per request for a try/catch. Errors thrown before the handler's
  // promise exists are answered at once; a rejected handler is answered by its catch.
  return function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ctx = new RequestContext('inbound', req, deps.log);
    deps.observer?.begin(ctx, req);
    trackRequest(deps.metrics, ctx, res, deps.audit, deps.observer);
    let handling: Promise<void>;
    try {
      const route = parseRoute(req.url ?? '/');
      if ((route.kind === 'a2a' && route.rest === '') || route.kind === 'mcp') ctx.style = 'jsonrpc';
      const caller = verifyClientPeer(req.socket as TLSSocket, deps.trustDomain);
      ctx.caller = caller;
      if (route.kind === 'a2a') handling = a2a.handle(req, res, route, ctx, caller);
      else if (route.kind === 'mcp' && route.name !== undefined) handling = mcp.handle(req, res, { ...route, name: route.name }, ctx, caller);
      else throw new MeshError('ROUTE_NOT_FOUND', `no route for ${req.method} ${route.path}`);
    } catch (err) {
      sendError(res, err, ctx);
      return ANSWERED;
    }
    return handling.then(undefined, (err: unknown) => sendError(res, err, ctx));
  };
}

const ANSWERED: Promise<void> = Promise.resolve();
