// The headers sidecars set for each other: x-agentmesh-hops (hop count, refused past limits.maxHops)
// and x-agentmesh-deadline (the remaining time budget in ms). Agents pass them on (the SDK does) so a
// call an agent makes while serving one counts as the next hop of the same chain.
import type { IncomingHttpHeaders } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';

export const HOPS_HEADER = 'x-agentmesh-hops';
export const DEADLINE_HEADER = 'x-agentmesh-deadline';

function headerInt(headers: IncomingHttpHeaders, name: string): number | undefined {
  const raw = headers[name];
  if (typeof raw !== 'string' || !/^\d{1,12}$/.test(raw.trim())) return undefined;
  return Number(raw);
}

export interface HopBudget {
  hops: number;
  timeoutMs: number;
  headers: Record<string, string>;
}

/** For a call leaving this sidecar: the next hop count (refused past the limit) and the budget. */
export function nextHop(headers: IncomingHttpHeaders, options: { maxHops: number; timeoutMs: number; target: string }): HopBudget {
  const hops = (headerInt(headers, HOPS_HEADER) ?? 0) + 1;
  if (hops > options.maxHops) {
    throw new MeshError('HOP_LIMIT_EXCEEDED', `call to ${options.target} refused: it would be hop ${hops}, past the hop limit of ${options.maxHops} (limits.maxHops); is there a call loop?`, { details: { hops, limit: options.maxHops } });
  }
  const incoming = headerInt(headers, DEADLINE_HEADER);
  const timeoutMs = incoming === undefined ? options.timeoutMs : Math.min(incoming, options.timeoutMs);
  return { hops, timeoutMs, headers: { [HOPS_HEADER]: String(hops), [DEADLINE_HEADER]: String(timeoutMs) } };
}

/** For a call arriving from another sidecar: the budget it brought, if any. */
export function arrivingBudget(headers: IncomingHttpHeaders): number | undefined {
  return headerInt(headers, DEADLINE_HEADER);
}
