// The hop count and time budget a call carries between sidecars (x-agentmesh-hops, x-agentmesh-deadline).
// Agents pass them on (the SDK does) so a call an agent makes while serving one counts as the next hop
// of the same chain. A malformed or out-of-range value is refused, never reset.
import type { IncomingHttpHeaders } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import { DEADLINE_HEADER, HOPS_HEADER, parseHeaderInt } from '../../sdk/mesh-headers.ts';

export interface HopBudget {
  hops: number;
  timeoutMs: number;
  headers: Record<string, string>;
}

/** A mesh integer header, refused with INVALID_REQUEST when present but not a plain integer in range. */
function meshInt(headers: IncomingHttpHeaders, name: string): number | undefined {
  const value = parseHeaderInt(headers[name]);
  if (value === null) {
    throw new MeshError('INVALID_REQUEST', `header ${name} must be a non-negative integer of at most 13 digits`, { details: { header: name } });
  }
  return value;
}

/** The hops a call has already crossed, as it arrives. */
export function arrivingHops(headers: IncomingHttpHeaders): number {
  return meshInt(headers, HOPS_HEADER) ?? 0;
}

/**
 * For a call leaving this sidecar: the next hop count (refused past `maxHops`) and the budget (`timeoutMs`,
 * or less when the call arrived with less). `target` names the callee in the hop-limit error only.
 * Positional, not an options object: this runs on every outbound call.
 */
export function nextHop(headers: IncomingHttpHeaders, maxHops: number, timeoutMs: number, target: string): HopBudget {
  const hops = arrivingHops(headers) + 1;
  if (hops > maxHops) {
    throw new MeshError('HOP_LIMIT_EXCEEDED', `call to ${target} refused: it would be hop ${hops}, past the hop limit of ${maxHops} (limits.maxHops); is there a call loop?`, { details: { hops, limit: maxHops } });
  }
  const incoming = meshInt(headers, DEADLINE_HEADER);
  const budget = incoming === undefined ? timeoutMs : Math.min(incoming, timeoutMs);
  return { hops, timeoutMs: budget, headers: { [HOPS_HEADER]: String(hops), [DEADLINE_HEADER]: String(budget) } };
}

/** For a call arriving from another sidecar: the budget it brought, if any. */
export function arrivingBudget(headers: IncomingHttpHeaders): number | undefined {
  return meshInt(headers, DEADLINE_HEADER);
}
