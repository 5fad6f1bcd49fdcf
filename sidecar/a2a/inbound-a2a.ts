// A2A on the mesh-facing listener: a call from another sidecar (caller already verified) to the local
// agent. Reads the method once (the table says what it is), deduplicates SendMessage by caller and
// messageId, and forwards with the verified caller, request id, hops and remaining deadline.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import { CALLER_HEADER, DEADLINE_HEADER, HOPS_HEADER, REQUEST_ID_HEADER } from '../../sdk/mesh-headers.ts';
import { forwardHeaders, readBody } from '../http/http-util.ts';
import type { A2aRoute } from '../http/routes.ts';
import type { PolicyGate } from '../policy/policy-gate.ts';
import type { RequestContext } from '../request-context.ts';
import { arrivingBudget, arrivingHops } from '../resilience/hop-budget.ts';
import type { MeshUsers } from '../users/mesh-users.ts';
import { forward, type ForwardRequest } from '../transport/proxy.ts';
import type { Admission } from '../overload/admission.ts';
import { admitCall, beforeForwarding, budgetLeft, failedOutcome } from '../overload/admit-call.ts';
import { CARD_PATH, type Binding } from './agent-card.ts';
import { dedupKey, recorder, replay, type MessageDedup } from './dedup.ts';
import { readRestRequest, readRpcRequest } from './envelope.ts';
import type { MeshDedup } from './mesh-dedup.ts';
import type { A2aMethod } from './methods.ts';
import type { Dispatcher } from 'undici';
import { withTraceHeaders } from '../observe/call-trace.ts';

/** The local agent as the inbound side sees it: its registry name and where each binding is served. */
export interface LocalAgent {
  name: string;
  /** Where the agent serves its card (asked again per A2A-Version for callers that want another shape). */
  cardUrl: URL;
  endpoints: Partial<Record<Binding, URL>>;
  dispatcher: Dispatcher;
}

export interface InboundA2aDeps {
  dedup: MessageDedup;
  /** resilience.meshDedup: the mesh-wide record, when enabled. */
  meshDedup?: MeshDedup | undefined;
  /** The local agent once its card has been read; undefined before that or when there is none. */
  localAgent: () => LocalAgent | undefined;
  maxBody: number;
  /** limits.maxJsonDepth */
  maxJsonDepth: number;
  /** Overload protection for the local agent, once it has been loaded. */
  admission?: () => Admission | undefined;
  /** The delegation chain verified, rate limits, and the user headers for the agent (users/). */
  users: MeshUsers;
  policy: PolicyGate;
  /** limits.maxSseEvent */
  maxSseEvent: number;
}

export function inboundA2a(deps: InboundA2aDeps) {
  async function handle(req: IncomingMessage, res: ServerResponse, route: A2aRoute, ctx: RequestContext, caller: string): Promise<void> {
    ctx.target = { kind: 'agent', name: route.name };
    const binding: Binding = route.rest === '' ? 'JSONRPC' : 'HTTP+JSON';
    ctx.style = binding === 'JSONRPC' ? 'jsonrpc' : 'json';
    const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readBody(req, deps.maxBody, deps.maxJsonDepth);
    let method: A2aMethod | undefined;
    if (binding === 'JSONRPC') {
      if (req.method !== 'POST' || !body) throw new MeshError('METHOD_NOT_ALLOWED', `use POST for JSON-RPC on /a2a/${route.name}`);
      method = readRpcRequest(body, ctx);
    } else {
      method = readRestRequest(req.method ?? 'GET', route.rest, ctx);
    }
    // Awaited only when there is something to wait for (a chain to verify): each await is a turn of the microtask queue.
    const verifying = deps.users.inbound(req, ctx, method?.readOnly === true || (method?.deduplicated === true && ctx.messageId !== undefined), route.rest !== CARD_PATH, res);
    if (verifying) await verifying;
    ctx.hops = arrivingHops(req.headers);
    let budget = arrivingBudget(req.headers);
    ctx.timeoutMs = budget;
    if (req.method === 'GET' && route.rest === CARD_PATH) ctx.method = 'agent-card';
    deps.policy.check(ctx);
    const agent = deps.localAgent();
    if (!agent || agent.name !== route.name) {
      throw new MeshError('AGENT_NOT_FOUND', `agent '${route.name}' is not served by this sidecar`, { details: { agent: route.name } });
    }
    if (req.method === 'GET' && route.rest === CARD_PATH) return serveCard(req, res, agent, ctx, caller);
    const target = agent.endpoints[binding];
    if (!target) throw new MeshError('ROUTE_NOT_FOUND', `agent '${agent.name}' does not serve the ${binding} binding`);
    const key = binding === 'JSONRPC' && method?.deduplicated && ctx.messageId ? dedupKey(caller, agent.name, ctx.messageId) : undefined;
    // Admitted (or refused) before any costly work for the call, such as signing the agent's headers.
    const admitting = admitCall(deps.admission?.(), caller, method, budget, res);
    const permit = admitting instanceof Promise ? await admitting : admitting;
    ctx.timeoutMs = budget = budgetLeft(budget, ctx);
    // Signed before the dedup check: nothing awaits between that check and begin().
    const signing = deps.users.agentHeaders(ctx, budget);
    const forAgent = signing ? await beforeForwarding(permit, signing) : undefined;
    const earlier = key ? deps.dedup.previous(key) : undefined;
    const first = earlier ? await earlier : undefined;
    if (first) {
      permit?.release('other');
      return replay(res, first);
    }
    const record = key ? recorder(deps.dedup.begin(key)) : undefined;
    if (key && record && deps.meshDedup && ctx.messageId) await deps.meshDedup.claim(key, ctx.messageId, agent.name, () => record.end(false));
    const parts = urlParts(target);
    // Filled in place, in the order that decides who wins: the caller's headers, the mesh's, the user's, the trace's.
    const forwarded = forwardHeaders(req.headers, NO_HEADERS);
    forwarded[CALLER_HEADER] = caller;
    forwarded[REQUEST_ID_HEADER] = ctx.requestId;
    forwarded[HOPS_HEADER] = String(ctx.hops);
    forwarded.host = parts.host;
    if (budget !== undefined) forwarded[DEADLINE_HEADER] = String(budget);
    if (forAgent) for (const name in forAgent) forwarded[name] = forAgent[name] as string;
    withTraceHeaders(forwarded, ctx);
    const request: ForwardRequest = {
      dispatcher: agent.dispatcher,
      origin: parts.origin,
      method: req.method ?? 'GET',
      path: `${parts.base}${route.rest}${route.search}` || '/',
      headers: forwarded,
      body,
      target: agentTarget(agent),
      maxSseEvent: deps.maxSseEvent, errorContext: ctx,
    };
    if (budget !== undefined) request.timeoutMs = budget;
    if (record) request.observe = record;
    // admitted(permit, forward(…)) written out: one async frame and one await less per call.
    try {
      await forward(request, res);
    } catch (err) {
      permit?.release(failedOutcome(err));
      throw err;
    }
    permit?.release('ok');
  }

  /** The agent's own card, in the shape the caller's A2A-Version asks for (the agent decides). */
  async function serveCard(req: IncomingMessage, res: ServerResponse, agent: LocalAgent, ctx: RequestContext, caller: string): Promise<void> {
    ctx.method = 'agent-card';
    if (agent.cardUrl.origin !== new URL(agent.endpoints.JSONRPC ?? agent.endpoints['HTTP+JSON'] ?? agent.cardUrl).origin) {
      throw new MeshError('A2A_ERROR', `agent '${agent.name}' serves its card from another origin than its interfaces (${agent.cardUrl.origin})`);
    }
    const version = req.headers['a2a-version'];
    await forward({
      dispatcher: agent.dispatcher,
      origin: agent.cardUrl.origin,
      method: 'GET',
      path: `${agent.cardUrl.pathname}${agent.cardUrl.search}`,
      headers: { accept: 'application/json', host: agent.cardUrl.host, [CALLER_HEADER]: caller, [REQUEST_ID_HEADER]: ctx.requestId, ...(typeof version === 'string' ? { 'a2a-version': version } : {}) },
      target: agentTarget(agent),
      timeoutMs: ctx.timeoutMs ?? 10_000,
    }, res);
  }

  return { handle };
}

const NO_HEADERS: Record<string, string> = {};

/** "local agent 'x'", for errors naming the hop: made once per agent (its name never changes), not per call. */
const agentTargets = new WeakMap<LocalAgent, string>();
function agentTarget(agent: LocalAgent): string {
  let target = agentTargets.get(agent);
  if (target === undefined) agentTargets.set(agent, target = `local agent '${agent.name}'`);
  return target;
}

/** A URL's origin, host and path without its trailing slash: URL getters build a new string on every read. */
const urlPartsCache = new WeakMap<URL, { origin: string; host: string; base: string }>();
function urlParts(url: URL): { origin: string; host: string; base: string } {
  let parts = urlPartsCache.get(url);
  if (!parts) {
    const path = url.pathname;
    urlPartsCache.set(url, parts = { origin: url.origin, host: url.host, base: path.endsWith('/') ? path.slice(0, -1) : path });
  }
  return parts;
}
