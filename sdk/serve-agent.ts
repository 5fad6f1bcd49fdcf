// serveAgent(): serves an @a2a-js/sdk agent executor on loopback (JSON-RPC and REST bindings, agent
// card at the well-known path), with the caller identity the sidecar verified exposed to the executor.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { A2A_PROTOCOL_VERSION, AGENT_CARD_PATH, type AgentCard, type AgentSkill } from '@a2a-js/sdk';
import { DefaultRequestHandler, InMemoryTaskStore, type AgentExecutor, type RequestContext, type User } from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, restHandler } from '@a2a-js/sdk/server/express';
import { BUDGET_HEADER, CALLER_HEADER, CHAIN_HEADER, DEADLINE_HEADER, HOPS_HEADER, USER_HEADER, parseHeaderInt } from './mesh-headers.ts';


export interface SkillInput {
  id: string;
  name?: string;
  description?: string;
  tags?: string[];
  examples?: string[];
}

export interface ServeAgentOptions {
  name: string;
  description?: string;
  version?: string;
  skills?: SkillInput[];
  streaming?: boolean;
  executor: AgentExecutor;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /**
   * A2A versions to serve on the same routes: ['1.0'] (default), ['1.0', '0.3'] (v1.0 plus the SDK's
   * v0.3 compatibility layer) or ['0.3'] (a v0.3-only agent: the card is always the v0.3 shape).
   */
  protocolVersions?: readonly ('1.0' | '0.3')[];
  /** Called with the express app before the A2A routes are mounted (extra routes, middleware). */
  configure?: (app: express.Express) => void;
}

export interface AgentServer extends AsyncDisposable {
  /** The base URL; the card is at `${url}/.well-known/agent-card.json`. */
  readonly url: string;
  readonly card: AgentCard;
  close(): Promise<void>;
  readonly closed: Promise<void>;
}

/** The caller's SPIFFE ID as the local sidecar verified it, or undefined for a direct (unmeshed) call. */
export function callerOf(ctx: RequestContext): string | undefined {
  const user = ctx.context?.user;
  return user?.isAuthenticated ? user.userName : undefined;
}

/**
 * Where this call stands in a chain of mesh calls: pass it as `{ context }` to the calls the agent makes
 * while serving it, so they count as the next hops (loops stop at the hop limit) and share its deadline.
 */
export interface MeshContext {
  caller: string | undefined;
  hops: number;
  /** When the budget runs out (epoch ms), if the caller set one. */
  deadlineAt: number | undefined;
  /** The signed delegation chain the sidecar gave this call (x-agentmesh-chain): passed back unchanged on calls made for it. */
  chain?: string | undefined;
  /** The end user the call is made for, as the sidecar verified it (x-agentmesh-user). */
  user?: { subject: string; claims: Record<string, unknown> } | undefined;
  /** Calls the originating request may still make (x-agentmesh-budget), when it has a budget. */
  budget?: number | undefined;
  /** W3C trace context of the call being served (the sidecar's server span), carried to calls made for it. */
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}

export function meshContextOf(ctx: RequestContext): MeshContext | undefined {
  const user = ctx.context?.user;
  return user instanceof MeshCaller ? user.context : undefined;
}

class MeshCaller implements User {
  readonly context: MeshContext;
  constructor(context: MeshContext) { this.context = context; }
  get isAuthenticated(): boolean { return this.context.caller !== undefined; }
  get userName(): string { return this.context.caller ?? ''; }
}

function singleHeader(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && value.length <= 512 ? value : undefined;
}

function headerNumber(value: string | string[] | undefined): number | undefined {
  return parseHeaderInt(value) ?? undefined;
}

/** x-agentmesh-user as the sidecar wrote it ({"subject","claims"}); undefined when absent or malformed. */
function userOf(value: string | string[] | undefined): MeshContext['user'] {
  if (typeof value !== 'string') return undefined;
  try {
    const parsed = JSON.parse(value) as { subject?: unknown; claims?: unknown };
    if (typeof parsed.subject !== 'string') return undefined;
    const claims = typeof parsed.claims === 'object' && parsed.claims !== null ? parsed.claims as Record<string, unknown> : {};
    return { subject: parsed.subject, claims };
  } catch {
    return undefined;
  }
}

class Anonymous implements User {
  get isAuthenticated(): boolean { return false; }
  get userName(): string { return ''; }
}

export async function serveAgent(options: ServeAgentOptions): Promise<AgentServer> {
  const app = express();
  const host = options.host ?? '127.0.0.1';
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port ?? 0, host, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const base = `http://${host}:${(server.address() as AddressInfo).port}`;
  const card = buildCard(options, base);
  const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), options.executor);
  options.configure?.(app);
  const versions = options.protocolVersions ?? ['1.0'];
  const compat = versions.includes('0.3') ? { legacyCompat: { enabled: true } } : {};
  if (!versions.includes('1.0')) {
    // A v0.3-only agent answers every card request with the v0.3 shape, as a pre-1.0 server would.
    app.use(`/${AGENT_CARD_PATH}`, (req, _res, next) => { req.headers['a2a-version'] = '0.3'; next(); });
  }
  const userBuilder = async (req: express.Request): Promise<User> => {
    const caller = req.headers[CALLER_HEADER];
    if (typeof caller !== 'string' || !caller) return new Anonymous();
    const budget = headerNumber(req.headers[DEADLINE_HEADER]);
    const chain = req.headers[CHAIN_HEADER];
    return new MeshCaller({
      caller, hops: headerNumber(req.headers[HOPS_HEADER]) ?? 0,
      deadlineAt: budget === undefined ? undefined : Date.now() + budget,
      chain: typeof chain === 'string' && chain !== '' ? chain : undefined,
      user: userOf(req.headers[USER_HEADER]),
      budget: headerNumber(req.headers[BUDGET_HEADER]),
      traceparent: singleHeader(req.headers.traceparent), tracestate: singleHeader(req.headers.tracestate),
    });
  };
  app.use(`/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: handler, ...compat }));
  app.use('/a2a/jsonrpc', jsonRpcHandler({ requestHandler: handler, userBuilder, ...compat }));
  app.use('/a2a/rest', restHandler({ requestHandler: handler, userBuilder, ...compat }));
  let closing: Promise<void> | undefined;
  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => { resolveClosed = resolve; });
  const close = () => (closing ??= new Promise<void>((resolve) => {
    server.close(() => { resolveClosed(); resolve(); });
    server.closeAllConnections();
  }));
  return { url: base, card, close, closed, [Symbol.asyncDispose]: close };
}

function buildCard(options: ServeAgentOptions, base: string): AgentCard {
  const iface = (path: string, binding: string, protocolVersion: string) => ({ url: `${base}${path}`, protocolBinding: binding, tenant: '', protocolVersion });
  const versions = options.protocolVersions ?? ['1.0'];
  const interfaces = versions.flatMap((v) => [
    iface('/a2a/jsonrpc', 'JSONRPC', v === '1.0' ? A2A_PROTOCOL_VERSION : v),
    iface('/a2a/rest', 'HTTP+JSON', v === '1.0' ? A2A_PROTOCOL_VERSION : v),
  ]);
  const skills: AgentSkill[] = (options.skills ?? []).map((s) => ({
    id: s.id, name: s.name ?? s.id, description: s.description ?? '', tags: s.tags ?? [], examples: s.examples ?? [],
    inputModes: [], outputModes: [], securityRequirements: [],
  }));
  return {
    name: options.name, description: options.description ?? '', version: options.version ?? '1.0.0',
    provider: undefined, documentationUrl: undefined, iconUrl: undefined,
    supportedInterfaces: interfaces,
    capabilities: { streaming: options.streaming ?? true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    securitySchemes: {}, securityRequirements: [], defaultInputModes: ['text/plain'], defaultOutputModes: ['text/plain'],
    skills, signatures: [],
  };
}
