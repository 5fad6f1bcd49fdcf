// One call's facts, created where the request arrives (outbound or inbound listener) and filled in as
// the handlers learn them: request id, caller, target, method, task and message ids, hops and deadline.
// Logs, errors and metrics read it (and later audit, policy and spans); nobody re-parses a body for them.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { REQUEST_ID_HEADER, parseRequestId } from '../sdk/mesh-headers.ts';
import type { Logger } from './log.ts';
import type { Delegated, MeshUser } from './users/delegation-claims.ts';
import type { CallTrace } from './observe/call-trace.ts';

export type Direction = 'outbound' | 'inbound';

/** How errors are written back on the route the request came in on. */
export type ErrorStyle =
  /** A2A JSON-RPC towards an agent: a JSON-RPC error with HTTP 200, as A2A servers answer. */
  | 'a2a-jsonrpc'
  /** JSON-RPC with the failure's HTTP status (MCP, and the sidecar-to-sidecar hop). */
  | 'jsonrpc'
  /** google.rpc.Status JSON (REST binding, registry, admin). */
  | 'json';

export interface Target {
  kind: 'agent' | 'mcp';
  name: string;
}

export class RequestContext {
  readonly requestId: string;
  readonly direction: Direction;
  /** performance.now() when the request arrived. */
  readonly startedAt = performance.now();
  /** The verified caller's SPIFFE ID (inbound); undefined on the outbound side (the local agent). */
  caller: string | undefined;
  target: Target | undefined;
  /** A2A v1.0 method name, `MCP {method}`, `REST other`, `agent-card` … ('-' until known). */
  method = '-';
  style: ErrorStyle = 'json';
  /** The JSON-RPC request id, once read (echoed in error answers). */
  rpcId: string | number | null | undefined;
  taskId: string | undefined;
  contextId: string | undefined;
  messageId: string | undefined;
  /** MCP tools/call: the tool name. */
  tool: string | undefined;
  /** Sidecar hops this call has crossed, counting this one once it leaves. */
  hops = 0;
  /** The time budget for the next hop (ms), once computed. */
  timeoutMs: number | undefined;
  /** Attempts beyond the first that the outbound side made. */
  retries = 0;
  /** The verified end user (users/: a bearer JWT on the outbound side, the signed chain on the inbound side). */
  user: MeshUser | undefined;
  /** Agent SPIFFE IDs the call passed through, oldest first, ending with the caller (this sidecar when outbound). */
  chain: readonly string[] | undefined;
  /** The verified delegation state this call carries (users/delegation.ts); undefined without one. */
  delegation: Delegated | undefined;
  /** Room for what later layers add: policy decision, trace. */
  decision: unknown;
  /** The call's span when tracing is on (observe/). */
  trace: CallTrace | undefined;
  readonly #baseLog: Logger;
  #log: Logger | undefined;

  constructor(direction: Direction, req: IncomingMessage, log: Logger) {
    this.direction = direction;
    this.requestId = parseRequestId(req.headers[REQUEST_ID_HEADER]) ?? randomUUID();
    this.#baseLog = log;
  }

  /** A child logger carrying the request id and what is known of the call (created on first use). */
  get log(): Logger {
    this.#log ??= this.#baseLog.child({ requestId: this.requestId, direction: this.direction });
    return this.#log;
  }

  /** What the logs and errors say about the call. */
  describe(): Record<string, unknown> {
    const out: Record<string, unknown> = { requestId: this.requestId, method: this.method };
    if (this.target) out.target = `${this.target.kind}/${this.target.name}`;
    if (this.caller) out.caller = this.caller;
    if (this.taskId) out.taskId = this.taskId;
    if (this.messageId) out.messageId = this.messageId;
    if (this.tool) out.tool = this.tool;
    return out;
  }

  /** Milliseconds since the request arrived. */
  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }
}
