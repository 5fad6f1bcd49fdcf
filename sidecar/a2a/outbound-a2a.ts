// A2A on the agent-facing listener: the target agent's card rewritten to point at this sidecar, and
// JSON-RPC and REST calls forwarded over mTLS to a live instance (task affinity first), with the
// method's facts from the method table. Errors on the JSON-RPC route are JSON-RPC errors with HTTP 200.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import { REQUEST_ID_HEADER } from '../../sdk/mesh-headers.ts';
import type { AgentRecord, RegistryView } from '../../registry/index.ts';
import { forwardHeaders, readBody } from '../http/http-util.ts';
import { sendJson } from '../http/respond.ts';
import type { A2aRoute } from '../http/routes.ts';
import type { PolicyGate } from '../policy/policy-gate.ts';
import type { RequestContext } from '../request-context.ts';
import { nextHop } from '../resilience/hop-budget.ts';
import type { MeshUsers } from '../users/mesh-users.ts';
import { resilientForward } from '../resilience/resilient-forward.ts';
import type { ResilienceState } from '../resilience/state.ts';
import type { PeerPools } from '../transport/peers.ts';
import type { PendingLimit } from '../overload/pending-limit.ts';
import { CARD_PATH, parseAgentCard, rewriteCard } from './agent-card.ts';
import { readRestRequest, readRpcRequest } from './envelope.ts';
import { a2aFault } from './instance-fault.ts';
import type { A2aMethod } from './methods.ts';
import { sniffTaskId, type TaskAffinity } from './task-affinity.ts';
import { traceHeaders, withTraceHeaders } from '../observe/call-trace.ts';

export interface OutboundA2aDeps {
  resilience: ResilienceState;
  affinity: TaskAffinity;
  /** limits.maxHops and the per-target deadline. */
  hops: { maxHops: number; timeout: (target: string) => number };
  view: RegistryView;
  peers: PeerPools;
  maxBody: number;
  /** limits.maxJsonDepth */
  maxJsonDepth: number;
  /** Request headers never sent to the next hop (http/credential-headers.ts). */
  dropHeaders: ReadonlySet<string>;
  /** limits.pendingPerTarget: calls waiting per target agent, then a fast 503. */
  pending?: PendingLimit;
  /** End user, delegation chain and push-target rules (users/). */
  users: MeshUsers;
  policy: PolicyGate;
  /** limits.maxSseEvent */
  maxSseEvent: number;
}

/** What every call to one agent shares: made once per agent name, not per request (see routeTo). */
interface AgentRoute {
  /** ctx.target for calls to it (read, never changed, by the limiters, the policy and the audit). */
  ref: { readonly kind: 'agent'; readonly name: string };
  /** "agent 'x'", for errors. */
  target: string;
  /** "agent/x": its balancer, retry budget and retry metrics. */
  key: string;
  /** "/a2a/x" */
  path: string;
  candidates: () => AgentRecord[];
  tap: (record: AgentRecord, chunk: Buffer) => void;
}

/** Agent names kept in the route cache; past this the oldest goes (a name is cheap to make again). */
const MAX_ROUTES = 1024;

export function outboundA2a(deps: OutboundA2aDeps) {
  const routes = new Map<string, AgentRoute>();
  const dispatcher = (record: AgentRecord) => deps.peers.get(record.endpoint, record.identity);

  /** The strings and closures for calls to `agent`, made on its first call rather than on every request. */
  function routeTo(agent: string): AgentRoute {
    let route = routes.get(agent);
    if (route) return route;
    route = {
      ref: Object.freeze({ kind: 'agent', name: agent }),
      target: `agent '${agent}'`,
      key: `agent/${agent}`,
      path: `/a2a/${agent}`,
      candidates: () => deps.view.agentInstances(agent),
      tap: (record, chunk) => {
        const learned = sniffTaskId(chunk);
        if (learned) deps.affinity.remember(agent, learned, record.instance);
      },
    };
    if (routes.size >= MAX_ROUTES) routes.delete(routes.keys().next().value ?? '');
    routes.set(agent, route);
    return route;
  }

  /** The live instances of an agent, or AGENT_NOT_FOUND naming it. */
  function requireAgent(agent: string): [AgentRecord, ...AgentRecord[]] {
    const instances = deps.view.agentInstances(agent);
    if (instances.length === 0) {
      throw new MeshError('AGENT_NOT_FOUND', `agent '${agent}' not found in the mesh`, { details: { agent } });
    }
    return instances as [AgentRecord, ...AgentRecord[]];
  }

  async function handle(req: IncomingMessage, res: ServerResponse, route: A2aRoute, ctx: RequestContext): Promise<void> {
    const agent = route.name;
    const to = routeTo(agent);
    ctx.target = to.ref;
    ctx.style = route.rest === '' ? 'a2a-jsonrpc' : 'json';
    if (req.method === 'GET' && route.rest === CARD_PATH) return serveCard(req, res, agent, ctx);
    let method: A2aMethod | undefined;
    // One object for both readers: readRpcRequest fills in params, users.outbound reads all three.
    const read: { params?: unknown; body: Buffer | undefined; rest: boolean } = { body: undefined, rest: route.rest !== '' };
    if (route.rest === '') {
      if (req.method !== 'POST') throw new MeshError('METHOD_NOT_ALLOWED', `use POST for JSON-RPC on /a2a/${agent}`);
      read.body = await readBody(req, deps.maxBody, deps.maxJsonDepth);
      method = readRpcRequest(read.body, ctx, read);
    } else {
      method = readRestRequest(req.method ?? 'GET', route.rest, ctx);
      if (req.method !== 'GET' && req.method !== 'HEAD') read.body = await readBody(req, deps.maxBody, deps.maxJsonDepth);
    }
    const body = read.body;
    // Undefined (nothing to await) when the call carries no token and no budget applies.
    const checking = deps.users.outbound(req, ctx, read);
    if (checking) await checking;
    deps.policy.check(ctx);
    const instances = requireAgent(agent);
    const target = to.target;
    const hop = nextHop(req.headers, deps.hops.maxHops, deps.hops.timeout(agent), target);
    ctx.hops = hop.hops;
    ctx.timeoutMs = hop.timeoutMs;
    deps.pending?.hold(agent, res);
    // Without a delegation chain there are no hop headers to sign, and without a task no owner to look up: no await.
    const delegated = ctx.delegation ? await deps.users.hopHeaders(ctx, instances, target) : undefined;
    const headers = forwardHeaders(req.headers, hop.headers, deps.dropHeaders);
    if (delegated) Object.assign(headers, delegated);
    headers[REQUEST_ID_HEADER] = ctx.requestId;
    withTraceHeaders(headers, ctx);
    const key = to.key;
    await resilientForward({
      candidates: to.candidates,
      preferred: ctx.taskId === undefined ? undefined : await deps.affinity.ownerOf(agent, ctx.taskId),
      idempotent: method?.readOnly ?? (req.method === 'GET' || req.method === 'HEAD'),
      // The receiving sidecar deduplicates these by messageId, so a resend after a lost connection is safe.
      resendOnLoss: method?.deduplicated === true && ctx.messageId !== undefined,
      messageId: ctx.messageId,
      isFault: a2aFault(route.rest !== '', method),
      retry: deps.resilience.retry(agent),
      balancer: deps.resilience.balancer(key, agent),
      budget: deps.resilience.budget(key, agent),
      dispatcher,
      request: {
        method: req.method ?? 'GET',
        // The JSON-RPC route (no rest, no query) reuses the agent's path string.
        path: route.rest === '' && route.search === '' ? to.path : `${to.path}${route.rest}${route.search}`,
        headers,
        body,
        timeoutMs: hop.timeoutMs,
        maxSseEvent: deps.maxSseEvent, errorContext: ctx,
      },
      target,
      meshErrorsAsOk: ctx.style === 'a2a-jsonrpc',
      onRetry: (reason) => {
        ctx.retries++;
        deps.resilience.onRetry(key, reason);
      },
      tap: to.tap,
    }, res);
  }

  /**
   * The card from the registry, rewritten to this route; but when the caller asks for v0.3 (an
   * A2A-Version of 0.x, or none: the spec's default) and the agent also speaks v0.3, the agent itself is
   * asked for that shape, as a caller talking to it directly would get.
   */
  async function serveCard(req: IncomingMessage, res: ServerResponse, agent: string, ctx: RequestContext): Promise<void> {
    ctx.method = 'agent-card';
    deps.policy.check(ctx);
    const [record] = requireAgent(agent);
    const header = req.headers['a2a-version'];
    const wanted = typeof header === 'string' && header.trim() !== '' ? header.trim() : '0.3';
    if (!wanted.startsWith('0.') || !offersBothVersions(record.card)) {
      return sendJson(res, 200, rewriteCard(record.card, routeUrl(req, agent)));
    }
    const hop = nextHop(req.headers, deps.hops.maxHops, Math.min(deps.hops.timeout(agent), CARD_TIMEOUT_MS), `agent '${agent}'`);
    const answer = await deps.peers.get(record.endpoint, record.identity).request({
      origin: record.endpoint, method: 'GET', path: `/a2a/${agent}${CARD_PATH}`,
      headers: { ...hop.headers, [REQUEST_ID_HEADER]: ctx.requestId, ...traceHeaders(ctx), 'a2a-version': wanted, accept: 'application/json' },
      signal: AbortSignal.timeout(hop.timeoutMs),
    }).catch((err: unknown) => { throw new MeshError('UPSTREAM_UNAVAILABLE', `agent '${agent}': cannot read its v${wanted} card (${(err as Error).message})`, { cause: err }); });
    const text = await readCapped(answer.body, MAX_CARD_BYTES);
    if (answer.statusCode !== 200 || text === undefined) {
      throw new MeshError('UPSTREAM_UNAVAILABLE', `agent '${agent}' did not serve its v${wanted} card (HTTP ${answer.statusCode})`);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new MeshError('A2A_ERROR', `agent '${agent}' served a v${wanted} card that is not JSON`, { cause: err });
    }
    const card = parseAgentCard(value, `agent '${agent}'`);
    sendJson(res, 200, rewriteCard(card, routeUrl(req, agent)));
  }

  return { handle };
}

const CARD_TIMEOUT_MS = 10_000;
const MAX_CARD_BYTES = 1024 * 1024;

/** A v1.0 card that also lists a v0.3 interface: its agent can serve either shape. */
function offersBothVersions(card: Record<string, unknown>): boolean {
  const interfaces = (card as { supportedInterfaces?: { protocolVersion?: unknown }[] }).supportedInterfaces;
  return Array.isArray(interfaces) && interfaces.some((i) => typeof i.protocolVersion === 'string' && i.protocolVersion.startsWith('0.'));
}

/** A response body as text, or undefined when it is longer than `limit` bytes (the rest is dropped). */
async function readCapped(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

/** `http://<host the caller used>/a2a/<agent>`: the route the rewritten card points at. */
function routeUrl(req: IncomingMessage, agent: string): string {
  const host = req.headers.host ?? `${req.socket.localAddress}:${req.socket.localPort}`;
  return `http://${host}/a2a/${agent}`;
}
