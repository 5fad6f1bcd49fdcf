// Agent cards at the sidecar: where the local agent serves each binding, and the card rewritten so
// every interface points at a sidecar route. Handles v1.0 (supportedInterfaces) and v0.3 (url) cards.
import { z } from 'zod';
import { MeshError } from '../../sdk/errors.ts';

/** Where every A2A agent serves its card, under its base URL (and under /a2a/{agent} at a sidecar). */
export const CARD_PATH = '/.well-known/agent-card.json';

/** The bindings the sidecar proxies; gRPC interfaces are dropped from rewritten cards. */
export type Binding = 'JSONRPC' | 'HTTP+JSON';

const InterfaceV1 = z.looseObject({ url: z.string(), protocolBinding: z.string() });
const InterfaceV03 = z.looseObject({ url: z.string(), transport: z.string() });
const CardShape = z.looseObject({
  name: z.string().min(1),
  supportedInterfaces: z.array(InterfaceV1).optional(),
  url: z.string().optional(),
  preferredTransport: z.string().optional(),
  additionalInterfaces: z.array(InterfaceV03).optional(),
});
export type CardShape = z.infer<typeof CardShape>;

/** Validates a card fetched from an agent (a boundary): a name and at least one usable interface. */
export function parseAgentCard(value: unknown, source: string): CardShape {
  const result = CardShape.safeParse(value);
  if (!result.success) {
    throw new MeshError('A2A_ERROR', `agent card from ${source} is invalid: ${z.prettifyError(result.error)}`);
  }
  if (Object.keys(agentEndpoints(result.data)).length === 0) {
    throw new MeshError('A2A_ERROR', `agent card from ${source} has no JSONRPC or HTTP+JSON interface`);
  }
  return result.data;
}

/** Where the agent serves each binding we proxy, from its card (v1.0 first, then v0.3 fields). */
export function agentEndpoints(card: CardShape): Partial<Record<Binding, string>> {
  const out: Partial<Record<Binding, string>> = {};
  for (const i of card.supportedInterfaces ?? []) {
    const binding = asBinding(i.protocolBinding);
    if (binding && !out[binding]) out[binding] = i.url;
  }
  if (card.url) {
    const binding = asBinding(card.preferredTransport ?? 'JSONRPC');
    if (binding && !out[binding]) out[binding] = card.url;
  }
  for (const i of card.additionalInterfaces ?? []) {
    const binding = asBinding(i.transport);
    if (binding && !out[binding]) out[binding] = i.url;
  }
  return out;
}

/** The card with every JSONRPC / HTTP+JSON interface pointing at `routeUrl`; gRPC interfaces removed. */
export function rewriteCard(card: Record<string, unknown>, routeUrl: string): Record<string, unknown> {
  const parsed = CardShape.parse(card);
  const out: Record<string, unknown> = { ...card };
  if (parsed.supportedInterfaces) {
    out.supportedInterfaces = parsed.supportedInterfaces
      .filter((i) => asBinding(i.protocolBinding))
      .map((i) => ({ ...i, url: routeUrl }));
  }
  if (parsed.url !== undefined) out.url = routeUrl;
  if (parsed.additionalInterfaces) {
    out.additionalInterfaces = parsed.additionalInterfaces
      .filter((i) => asBinding(i.transport))
      .map((i) => ({ ...i, url: routeUrl }));
  }
  return out;
}

function asBinding(value: string): Binding | undefined {
  const v = value.toUpperCase();
  if (v === 'JSONRPC') return 'JSONRPC';
  if (v === 'HTTP+JSON' || v === 'REST') return 'HTTP+JSON';
  return undefined;
}
