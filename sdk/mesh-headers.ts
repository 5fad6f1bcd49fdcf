// Every `x-agentmesh-*` header name and the one parser for their values. Imports nothing, so the
// sidecar, the SDK and agents can share it without loading anything else (`agentmesh/sdk/headers`).

/** Set by the receiving sidecar: the caller's SPIFFE ID from its verified client certificate. */
export const CALLER_HEADER = 'x-agentmesh-caller';
/** Sidecar hops the call has crossed; past limits.maxHops it is refused (stops agent call loops). */
export const HOPS_HEADER = 'x-agentmesh-hops';
/** The remaining time budget of the call, in milliseconds. */
export const DEADLINE_HEADER = 'x-agentmesh-deadline';
/** One id per call, continued across hops; in logs, errors and (later) traces and the audit. */
export const REQUEST_ID_HEADER = 'x-agentmesh-request-id';
/** On an answer from a hop that already retried: earlier hops do not retry it again. */
export const RETRIED_HEADER = 'x-agentmesh-retried';
/** On an answer replayed by the receiving sidecar's SendMessage deduplication. */
export const DEDUPLICATED_HEADER = 'x-agentmesh-deduplicated';
/** On an error the mesh answered itself: the catalog code (AGENT_NOT_FOUND, UPSTREAM_TIMEOUT …). */
export const ERROR_HEADER = 'x-agentmesh-error';
/**
 * On a JSON-RPC error the mesh answered itself with HTTP 200 (as A2A servers do): the HTTP status the
 * failure maps to, so tools that look at status codes still can.
 */
export const STATUS_HEADER = 'x-agentmesh-status';
/**
 * The verified end user (JSON `{"subject","claims"}`, non-ASCII escaped) and the delegation chain: between
 * sidecars a token the calling sidecar signed for this hop, towards the agent one its own sidecar signed,
 * which the agent hands back unchanged on the calls it makes while serving this one (the SDK does).
 */
export const USER_HEADER = 'x-agentmesh-user';
export const CHAIN_HEADER = 'x-agentmesh-chain';
/** Calls the originating request may still make (limits.callBudget); informational, the signed chain decides. */
export const BUDGET_HEADER = 'x-agentmesh-budget';

/** Every header the mesh owns: a copy arriving from outside the mesh is never trusted. */
export const MESH_HEADERS: readonly string[] = [
  CALLER_HEADER, HOPS_HEADER, DEADLINE_HEADER, REQUEST_ID_HEADER, RETRIED_HEADER, DEDUPLICATED_HEADER,
  ERROR_HEADER, STATUS_HEADER, USER_HEADER, CHAIN_HEADER, BUDGET_HEADER,
];

/** Largest value the integer headers accept (hops, deadline in ms): about 31 years of milliseconds. */
const MAX_HEADER_INT = 1e12;

export type HeaderValue = string | string[] | undefined;

/**
 * A non-negative integer header: `undefined` when absent, `null` when present but not a plain decimal
 * integer within bounds (callers refuse those instead of treating them as absent).
 */
export function parseHeaderInt(value: HeaderValue): number | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (!/^\d{1,13}$/.test(text)) return null;
  const n = Number(text);
  return n <= MAX_HEADER_INT ? n : null;
}

/** Request ids are continued only when they are short and plain; anything else is replaced. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function parseRequestId(value: HeaderValue): string | undefined {
  return typeof value === 'string' && REQUEST_ID.test(value) ? value : undefined;
}
