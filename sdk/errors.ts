// The one error catalog: stable string codes, the wire codes they map to, and the MeshError class.
// The sdk's second entry point (`agentmesh/sdk/errors`): registry/ and sidecar/ import it here, not
// through index.ts, so a sidecar never loads express and the A2A/MCP clients. Imports nothing.
// Only sidecar/http/respond.ts turns these into HTTP responses.

/** Every error agentmesh raises, with the HTTP status and JSON-RPC code it maps to on the wire. */
export const ERROR_CATALOG = {
  CONFIG_INVALID: { http: 500, rpc: -32603 },
  AGENT_NOT_FOUND: { http: 404, rpc: -32050 },
  MCP_SERVER_NOT_FOUND: { http: 404, rpc: -32050 },
  MCP_SESSION_NOT_FOUND: { http: 404, rpc: -32001 },
  MCP_TOOL_NOT_FOUND: { http: 404, rpc: -32602 },
  /** Tool integrity: the tool's definition differs from the pinned one (approve it again with `agentmesh tools approve`). */
  TOOL_DEFINITION_CHANGED: { http: 403, rpc: -32070 },
  /** Tool integrity: tools.pinning is approve and nobody approved this tool yet. */
  TOOL_NOT_APPROVED: { http: 403, rpc: -32071 },
  /** Tool integrity: another identity announces a tool under the federated name of an approved one. */
  TOOL_SHADOWED: { http: 403, rpc: -32072 },
  /** Tool integrity: tools.flagged is block and the tool's description was flagged. */
  TOOL_FLAGGED: { http: 403, rpc: -32073 },
  ROUTE_NOT_FOUND: { http: 404, rpc: -32601 },
  METHOD_NOT_ALLOWED: { http: 405, rpc: -32600 },
  PARSE_ERROR: { http: 400, rpc: -32700 },
  INVALID_REQUEST: { http: 400, rpc: -32600 },
  BODY_TOO_LARGE: { http: 413, rpc: -32600 },
  FORBIDDEN: { http: 403, rpc: -32053 },
  /** The mesh policy does not allow the call (DESIGN.md "Policy, delegation and audit"). */
  POLICY_DENIED: { http: 403, rpc: -32060 },
  UPSTREAM_UNAVAILABLE: { http: 502, rpc: -32051 },
  UPSTREAM_TIMEOUT: { http: 504, rpc: -32052 },
  PEER_IDENTITY_MISMATCH: { http: 502, rpc: -32054 },
  SHUTTING_DOWN: { http: 503, rpc: -32055 },
  HOP_LIMIT_EXCEEDED: { http: 508, rpc: -32057 },
  /** The agent (or the calling sidecar's queue to a target) is saturated, or the call's deadline cannot be met. */
  OVERLOADED: { http: 503, rpc: -32061 },
  /** The caller is over its fair share of the agent (concurrent calls or open streams). */
  CALLER_OVER_LIMIT: { http: 429, rpc: -32062 },
  REGISTRY_UNAVAILABLE: { http: 503, rpc: -32056 },
  /** A SendMessage may have reached an instance that can no longer be asked: look the task up before resending. */
  OUTCOME_UNKNOWN: { http: 502, rpc: -32059 },
  /** An upstream SSE line or event exceeded limits.maxSseEvent: the stream was ended. */
  STREAM_LIMIT_EXCEEDED: { http: 502, rpc: -32068 },
  REGISTRY_RECORD_INVALID: { http: 500, rpc: -32603 },
  TOOL_PIN_INVALID: { http: 500, rpc: -32603 },
  IDENTITY_INVALID: { http: 500, rpc: -32603 },
  /** This sidecar's own SVID has expired (renewal failed): it refuses to call out rather than fail at the TLS layer. */
  IDENTITY_EXPIRED: { http: 503, rpc: -32058 },
  /** The online CA refused a join token: bad signature, expired, wrong audience or trust domain. */
  JOIN_TOKEN_INVALID: { http: 401, rpc: -32053 },
  /** The online CA has already signed a CSR for this join token (tokens work once). */
  JOIN_TOKEN_USED: { http: 409, rpc: -32053 },
  SIDECAR_UNREACHABLE: { http: 502, rpc: -32051 },
  A2A_ERROR: { http: 502, rpc: -32603 },
  ABORTED: { http: 499, rpc: -32603 },
  /** The end user's bearer token, or a delegation chain from another sidecar, is missing what it needs or does not verify. */
  UNAUTHENTICATED: { http: 401, rpc: -32064 },
  /** The caller is over its rate, or its concurrency, to this target (per limit, caller and target); Retry-After says when to retry. */
  RATE_LIMITED: { http: 429, rpc: -32065 },
  /** The originating request has spent its call budget (limits.callBudget): the fan-out stops here. */
  CALL_BUDGET_EXHAUSTED: { http: 429, rpc: -32066 },
  /** A push-notification URL the mesh refuses to let an agent call (not https, or a private, loopback or metadata address). */
  PUSH_TARGET_FORBIDDEN: { http: 400, rpc: -32067 },
  INTERNAL: { http: 500, rpc: -32603 },
} as const satisfies Record<string, { http: number; rpc: number }>;

export type MeshErrorCode = keyof typeof ERROR_CATALOG;

export interface MeshErrorOptions {
  cause?: unknown;
  /** Structured details safe to show a caller (never secrets). */
  details?: Record<string, unknown>;
  /** The A2A / JSON-RPC code a remote peer answered with, when this wraps a wire error. */
  rpcCode?: number;
  /** When the caller may try again (ms); answered as a `Retry-After` header in whole seconds. */
  retryAfterMs?: number;
}

export class MeshError extends Error {
  override readonly name = 'MeshError';
  readonly code: MeshErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly rpcCode: number;
  readonly httpStatus: number;
  readonly retryAfterMs: number | undefined;

  constructor(code: MeshErrorCode, message: string, options: MeshErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.rpcCode = options.rpcCode ?? ERROR_CATALOG[code].rpc;
    this.httpStatus = ERROR_CATALOG[code].http;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isMeshError(err: unknown, code?: MeshErrorCode): err is MeshError {
  return err instanceof MeshError && (code === undefined || err.code === code);
}
