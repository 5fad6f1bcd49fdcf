// The agent this sidecar fronts: reads its card from agent.url (retrying while it starts), works out
// where it serves each binding, and holds the connection pool to it.
import { Pool } from '../transport/undici.ts';
import { MeshError } from '../../sdk/errors.ts';
import { CARD_PATH, agentEndpoints, parseAgentCard, type Binding, type CardShape } from './agent-card.ts';
import type { LocalAgent } from './inbound-a2a.ts';

export interface LoadedAgent extends LocalAgent {
  card: CardShape;
  /** Reads the card again (the health check), over the loader's one-connection pool. */
  readCard(signal: AbortSignal): Promise<CardShape>;
  /** Takes a card read later (same origin: the pool stays); throws when the agent moved to another origin. */
  useCard(card: CardShape): void;
  close(): Promise<void>;
}


/** Fetches the card, retrying with backoff until `timeoutMs`; fails naming the URL and the last error. */
export async function loadLocalAgent(options: { url: string; name?: string; timeoutMs: number; signal: AbortSignal }): Promise<LoadedAgent> {
  const cardUrl = new URL(CARD_PATH.slice(1), options.url.endsWith('/') ? options.url : `${options.url}/`);
  const deadline = AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]);
  let delay = 50;
  let lastError: unknown;
  // undici, not the global fetch: that would load Node's own copy of undici (~15 MB RSS) for one request.
  const cardPool = new Pool(cardUrl.origin, { connections: 1 });
  const readCard = (signal: AbortSignal) => readAgentCard(cardPool, cardUrl, signal);
  try {
    while (!deadline.aborted) {
      try {
        const card = await readCard(deadline);
        return build(card, options.name ?? card.name, cardUrl, readCard, cardPool);
      } catch (err) {
        if (err instanceof MeshError) throw err;
        lastError = err;
      }
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
      delay = Math.min(delay * 2, 1000);
    }
  } catch (err) {
    await cardPool.destroy();
    throw err;
  }
  await cardPool.destroy();
  throw new MeshError('A2A_ERROR', `could not read the agent card at ${cardUrl.href} within ${options.timeoutMs} ms (agent.url): ${describe(lastError)}`, { cause: lastError });
}

/** One read of the card through `pool` (connected to the card's origin); throws on any failure. */
export async function readAgentCard(pool: Pool, cardUrl: URL, signal: AbortSignal): Promise<CardShape> {
  // Ask for the v1.0 card; a v0.3-only agent ignores the header and serves its v0.3 card.
  const res = await pool.request({
    path: `${cardUrl.pathname}${cardUrl.search}`, method: 'GET', signal,
    headers: { accept: 'application/json', 'a2a-version': '1.0' },
  });
  if (res.statusCode < 200 || res.statusCode > 299) {
    await res.body.dump();
    throw new Error(`HTTP ${res.statusCode}`);
  }
  return parseAgentCard(await res.body.json(), cardUrl.href);
}

function build(card: CardShape, name: string, cardUrl: URL, readCard: LoadedAgent['readCard'], cardPool: Pool): LoadedAgent {
  const { endpoints, origin } = endpointsOf(card, name);
  // Unbounded (admission bounds the calls): a caller's open streams never hold connections others wait for.
  const dispatcher = new Pool(origin, { connections: null, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
  const agent: LoadedAgent = {
    name, card, cardUrl, endpoints, dispatcher, readCard,
    useCard(next) {
      const moved = endpointsOf(next, name);
      if (moved.origin !== origin) {
        throw new MeshError('A2A_ERROR', `agent '${name}' now serves from ${moved.origin}, not ${origin}; restart the sidecar to follow it`);
      }
      agent.card = next;
      agent.endpoints = moved.endpoints;
    },
    close: async () => { await Promise.all([dispatcher.close(), cardPool.destroy()]); },
  };
  return agent;
}

/** Where the card says each binding is served, and the one origin they share. */
function endpointsOf(card: CardShape, name: string): { endpoints: Partial<Record<Binding, URL>>; origin: string } {
  const endpoints: Partial<Record<Binding, URL>> = {};
  const origins = new Set<string>();
  for (const [binding, url] of Object.entries(agentEndpoints(card)) as [Binding, string][]) {
    const parsed = new URL(url);
    endpoints[binding] = parsed;
    origins.add(parsed.origin);
  }
  const [origin] = origins;
  if (origins.size !== 1 || origin === undefined) {
    throw new MeshError('A2A_ERROR', `agent '${name}' serves its bindings from ${origins.size} origins (${[...origins].join(', ')}); the sidecar expects one`);
  }
  return { endpoints, origin };
}

function describe(err: unknown): string {
  if (err instanceof Error) return (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message);
  return String(err ?? 'no answer');
}
