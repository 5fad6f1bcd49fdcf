// connectMesh(): the agent's view of the mesh through its local sidecar — registry queries, an
// @a2a-js/sdk Client per agent route, and send/stream helpers. Mesh failures are MeshErrors; A2A
// errors from the remote agent arrive as the @a2a-js/sdk's typed errors (with their A2A code).
import { z } from 'zod';
import type { Message, SendMessageResponse, StreamResponse, Task } from '@a2a-js/sdk';
import { ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, RestTransportFactory, type Client } from '@a2a-js/sdk/client';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ERROR_CATALOG, MeshError, type MeshErrorCode } from './errors.ts';
import { message } from './messages.ts';
import { CHAIN_HEADER, DEADLINE_HEADER, HOPS_HEADER } from './mesh-headers.ts';
import type { MeshContext } from './serve-agent.ts';

export const DEFAULT_SIDECAR_URL = 'http://127.0.0.1:15001';

const InstanceSchema = z.looseObject({
  instance: z.string(), identity: z.string(), endpoint: z.string(),
  labels: z.record(z.string(), z.string()), startedAt: z.string(), heartbeatAt: z.string(),
});
const AgentEntrySchema = z.looseObject({
  name: z.string(),
  card: z.looseObject({ name: z.string(), skills: z.array(z.looseObject({ id: z.string(), tags: z.array(z.string()).optional() })).optional() }),
  labels: z.record(z.string(), z.string()),
  instances: z.array(InstanceSchema),
});
const AgentsResponseSchema = z.object({ agents: z.array(AgentEntrySchema) });
export type MeshAgent = z.infer<typeof AgentEntrySchema>;
const McpEntrySchema = z.looseObject({
  name: z.string(),
  tools: z.array(z.looseObject({ name: z.string(), description: z.string().optional() })),
  instances: z.array(InstanceSchema),
});
export type MeshMcpServer = z.infer<typeof McpEntrySchema>;

export interface AgentQuery {
  name?: string;
  skill?: string;
  tag?: string;
  labels?: Record<string, string>;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface SendOptions extends CallOptions {
  contextId?: string;
  taskId?: string;
  /** The call this one is made on behalf of (from meshContextOf): hop count and deadline carry on. */
  context?: MeshContext | undefined;
}

export interface Mesh {
  readonly url: string;
  agents(query?: AgentQuery, options?: CallOptions): Promise<MeshAgent[]>;
  /** A standard @a2a-js/sdk Client bound to the sidecar's route for `name`. */
  a2a(name: string, options?: CallOptions & { binding?: 'JSONRPC' | 'HTTP+JSON' }): Promise<Client>;
  send(name: string, input: string | Message, options?: SendOptions): Promise<Task | Message>;
  stream(name: string, input: string | Message, options?: SendOptions): AsyncGenerator<StreamResponse, void, undefined>;
  /**
   * A connected MCP Client: on the federated endpoint (every tool in the mesh, as `{server}__{tool}`),
   * or on one server's transparent route when `server` is given. Close it when done. `context`
   * (meshContextOf) carries the call it is opened for on: hops, deadline, delegation chain and trace context.
   */
  mcp(server?: string, options?: CallOptions & { client?: ConstructorParameters<typeof McpClient>[1]; context?: MeshContext | undefined }): Promise<McpClient>;
  /** MCP servers in the mesh with their tools, as the registry holds them. */
  mcpServers(options?: CallOptions): Promise<MeshMcpServer[]>;
}

export interface ConnectOptions {
  /** The local sidecar's outbound URL. Default: AGENTMESH_URL, then http://127.0.0.1:15001. */
  url?: string;
  fetch?: typeof fetch;
}

export function connectMesh(options: ConnectOptions = {}): Mesh {
  // The one read of the environment outside the process entry: the SDK's documented default.
  const url = (options.url ?? process.env.AGENTMESH_URL ?? DEFAULT_SIDECAR_URL).replace(/\/$/, '');
  const fetchImpl = options.fetch ?? fetch;
  const clients = new Map<string, Promise<Client>>();

  async function request(path: string, signal: AbortSignal | undefined): Promise<Response> {
    try {
      return await fetchImpl(`${url}${path}`, { ...(signal ? { signal } : {}), headers: { accept: 'application/json' } });
    } catch (err) {
      if (signal?.aborted) throw new MeshError('ABORTED', `request to ${url}${path} was aborted`, { cause: signal.reason ?? err });
      throw new MeshError('SIDECAR_UNREACHABLE', `cannot reach the agentmesh sidecar at ${url} (set AGENTMESH_URL?)`, { cause: err });
    }
  }

  async function a2a(name: string, opts: CallOptions & { binding?: 'JSONRPC' | 'HTTP+JSON' } = {}): Promise<Client> {
    const key = `${name} ${opts.binding ?? ''}`;
    let client = clients.get(key);
    if (!client) {
      client = createClient(name, opts);
      clients.set(key, client);
      client.catch(() => clients.delete(key));
    }
    return client;
  }

  async function createClient(name: string, opts: CallOptions & { binding?: 'JSONRPC' | 'HTTP+JSON' }): Promise<Client> {
    const res = await request(`/a2a/${encodeURIComponent(name)}/.well-known/agent-card.json`, opts.signal);
    if (!res.ok) throw await errorFromResponse(res, `agent '${name}'`);
    await res.body?.cancel();
    const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ fetchImpl }), new RestTransportFactory({ fetchImpl })],
      ...(opts.binding ? { preferredTransports: [opts.binding] } : {}),
    }));
    // The trailing slash matters: the SDK resolves the card path relative to this URL.
    return factory.createFromUrl(`${url}/a2a/${encodeURIComponent(name)}/`);
  }

  return {
    url,
    async agents(query = {}, opts = {}) {
      const params = new URLSearchParams();
      if (query.name) params.set('name', query.name);
      if (query.skill) params.set('skill', query.skill);
      if (query.tag) params.set('tag', query.tag);
      for (const [k, v] of Object.entries(query.labels ?? {})) params.append('label', `${k}=${v}`);
      const res = await request(`/registry/agents${params.size ? `?${params}` : ''}`, opts.signal);
      if (!res.ok) throw await errorFromResponse(res, 'registry query');
      const parsed = AgentsResponseSchema.safeParse(await res.json());
      if (!parsed.success) throw new MeshError('INTERNAL', `unexpected answer from the sidecar at ${url}: ${z.prettifyError(parsed.error)}`);
      return parsed.data.agents;
    },
    a2a,
    async send(name, input, opts = {}) {
      const client = await a2a(name, opts);
      try {
        return await client.sendMessage({ tenant: '', message: toMessage(input, opts), configuration: undefined, metadata: undefined }, callOptions(opts));
      } catch (err) {
        throw meshErrorOf(err);
      }
    },
    async mcp(server, opts = {}) {
      const client = new McpClient({ name: 'agentmesh-sdk', version: '0.1.0' }, opts.client);
      const endpoint = `${url}/mcp${server ? `/${encodeURIComponent(server)}` : ''}`;
      try {
        // A session opened while serving a call belongs to that call: its hops, deadline and delegation chain.
        const requestInit = opts.context ? { requestInit: { headers: contextHeaders(opts.context) } } : {};
        await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), { fetch: fetchImpl, ...requestInit }), signalOption(opts));
      } catch (err) {
        await client.close().catch(() => undefined);
        if (opts.signal?.aborted) throw new MeshError('ABORTED', `connecting to ${endpoint} was aborted`, { cause: err });
        const status = (err as { code?: unknown }).code;
        if (status === 404) throw new MeshError('MCP_SERVER_NOT_FOUND', `MCP server '${server ?? ''}' not found in the mesh`, { cause: err });
        throw new MeshError('SIDECAR_UNREACHABLE', `cannot open an MCP session at ${endpoint}: ${(err as Error).message}`, { cause: err });
      }
      return client;
    },
    async mcpServers(opts = {}) {
      const res = await request('/registry/mcp', opts.signal);
      if (!res.ok) throw await errorFromResponse(res, 'registry query');
      const parsed = z.object({ servers: z.array(McpEntrySchema) }).safeParse(await res.json());
      if (!parsed.success) throw new MeshError('INTERNAL', `unexpected answer from the sidecar at ${url}: ${z.prettifyError(parsed.error)}`);
      return parsed.data.servers;
    },
    async *stream(name, input, opts = {}) {
      const client = await a2a(name, opts);
      try {
        yield* client.sendMessageStream({ tenant: '', message: toMessage(input, opts), configuration: undefined, metadata: undefined }, callOptions(opts));
      } catch (err) {
        throw meshErrorOf(err);
      }
    },
  };
}

function toMessage(input: string | Message, ids: SendOptions): Message {
  if (typeof input !== 'string') return input;
  return message('user', input, { ...(ids.taskId ? { taskId: ids.taskId } : {}), ...(ids.contextId ? { contextId: ids.contextId } : {}) });
}

function signalOption(opts: CallOptions): { signal?: AbortSignal } {
  return opts.signal ? { signal: opts.signal } : {};
}

/** Per-call options for the @a2a-js/sdk client: the signal, and the mesh headers of the parent call. */
function callOptions(opts: SendOptions): { signal?: AbortSignal; serviceParameters?: Record<string, string> } {
  const context = opts.context;
  if (!context) return signalOption(opts);
  return { ...signalOption(opts), serviceParameters: contextHeaders(context) };
}

/** The mesh headers that make a call part of the call being served: hops, deadline, the delegation chain and W3C trace context. */
export function contextHeaders(context: MeshContext): Record<string, string> {
  const params: Record<string, string> = { [HOPS_HEADER]: String(context.hops) };
  if (context.deadlineAt !== undefined) params[DEADLINE_HEADER] = String(Math.max(0, Math.round(context.deadlineAt - Date.now())));
  if (context.chain !== undefined) params[CHAIN_HEADER] = context.chain;
  if (context.traceparent !== undefined) params.traceparent = context.traceparent;
  if (context.tracestate !== undefined) params.tracestate = context.tracestate;
  return params;
}

/**
 * A JSON-RPC error the mesh answered itself (its `data.code` is a catalog code with the matching
 * JSON-RPC code) as a MeshError; anything else, e.g. an A2A error from the remote agent, unchanged.
 */
function meshErrorOf(err: unknown): unknown {
  const wire = err as { envelopeCode?: unknown; data?: { code?: unknown }; message?: unknown };
  const code = wire?.data?.code;
  if (typeof code !== 'string' || !Object.hasOwn(ERROR_CATALOG, code)) return err;
  const entry = ERROR_CATALOG[code as MeshErrorCode];
  if (wire.envelopeCode !== entry.rpc) return err;
  return new MeshError(code as MeshErrorCode, String(wire.message ?? code), { cause: err, details: { ...wire.data } });
}

const CODES = new Set<string>(['AGENT_NOT_FOUND', 'UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'PEER_IDENTITY_MISMATCH', 'FORBIDDEN', 'POLICY_DENIED', 'SHUTTING_DOWN', 'INVALID_REQUEST',
  'UNAUTHENTICATED', 'RATE_LIMITED', 'CALL_BUDGET_EXHAUSTED', 'PUSH_TARGET_FORBIDDEN']);

/** A sidecar error body (google.rpc.Status with an ErrorInfo reason) as a MeshError with the same code. */
async function errorFromResponse(res: Response, what: string): Promise<MeshError> {
  const body = await res.json().catch(() => undefined) as { error?: { message?: string; details?: { reason?: string }[] } } | undefined;
  const reason = body?.error?.details?.find((d) => typeof d.reason === 'string')?.reason;
  const code: MeshErrorCode = reason && CODES.has(reason) ? reason as MeshErrorCode : 'INTERNAL';
  return new MeshError(code, body?.error?.message ?? `${what}: the sidecar answered HTTP ${res.status}`);
}

export type { SendMessageResponse };
