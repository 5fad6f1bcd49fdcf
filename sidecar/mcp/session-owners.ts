// Which verified caller opened each MCP session on this sidecar's pass-through route: only that identity
// may use or delete it; anyone else gets 404 MCP_SESSION_NOT_FOUND, as if it did not exist. Bounded:
// at most `max` sessions in all and `maxPerCaller` per identity (a caller's own oldest go first).
import { MeshError } from '../../sdk/errors.ts';

export class SessionOwners {
  /** `${server}\n${session id}` → the SPIFFE ID that opened it, oldest first. */
  readonly #owners = new Map<string, string>();
  readonly #perCaller = new Map<string, number>();
  readonly #max: number;
  readonly #maxPerCaller: number;

  constructor(options: { max?: number; maxPerCaller?: number } = {}) {
    this.#max = options.max ?? 10_000;
    this.#maxPerCaller = options.maxPerCaller ?? 1_000;
  }

  /** Throws MCP_SESSION_NOT_FOUND unless `caller` opened `session` on `server` (an unknown session included). */
  check(server: string, session: string, caller: string): void {
    if (this.#owners.get(`${server}\n${session}`) === caller) return;
    // The same answer whether the session is someone else's or unknown: its existence is not revealed.
    throw new MeshError('MCP_SESSION_NOT_FOUND', `no MCP session with this id for caller ${caller} on server '${server}' (start a new session with initialize)`, { details: { server } });
  }

  /** Records that `caller` opened `session` (the Mcp-Session-Id of an initialize response). */
  record(server: string, session: string, caller: string): void {
    const key = `${server}\n${session}`;
    if (this.#owners.has(key)) return;
    if ((this.#perCaller.get(caller) ?? 0) >= this.#maxPerCaller) this.#evictOldestOf(caller);
    if (this.#owners.size >= this.#max) this.#delete(this.#owners.keys().next().value ?? '');
    this.#owners.set(key, caller);
    this.#perCaller.set(caller, (this.#perCaller.get(caller) ?? 0) + 1);
  }

  /** Forgets a session (deleted by its owner, or gone upstream). */
  drop(server: string, session: string): void {
    this.#delete(`${server}\n${session}`);
  }

  get size(): number {
    return this.#owners.size;
  }

  #evictOldestOf(caller: string): void {
    for (const [key, owner] of this.#owners) {
      if (owner === caller) { this.#delete(key); return; }
    }
  }

  #delete(key: string): void {
    const owner = this.#owners.get(key);
    if (owner === undefined) return;
    this.#owners.delete(key);
    const left = (this.#perCaller.get(owner) ?? 1) - 1;
    if (left <= 0) this.#perCaller.delete(owner);
    else this.#perCaller.set(owner, left);
  }
}

type Headers = Record<string, string | string[] | undefined>;

/**
 * For one inbound MCP request from `caller`: refuses a session id it did not open (before anything is
 * read), forgets a session its owner deleted, and returns how the opener is learned (from an HTTP
 * upstream's response header, or from the stdio bridge) and how a session the upstream no longer knows is dropped.
 */
export function bindSession(owners: SessionOwners, server: string, caller: string, req: { method?: string | undefined; headers: Headers }, res: { statusCode: number; once(event: 'finish', fn: () => void): unknown }) {
  const header = req.headers['mcp-session-id'];
  const session = typeof header === 'string' ? header : undefined;
  if (session !== undefined) {
    owners.check(server, session, caller);
    if (req.method === 'DELETE') res.once('finish', () => { if (res.statusCode < 300) owners.drop(server, session); });
  }
  return {
    opened: (id: string) => owners.record(server, id, caller),
    onResponse: (status: number, headers: Headers) => {
      const created = headers['mcp-session-id'];
      if (session === undefined && status < 300 && typeof created === 'string') owners.record(server, created, caller);
      if (session !== undefined && status === 404) owners.drop(server, session);
    },
  };
}
