// The watch-fed, in-memory view a sidecar routes from: records indexed by kind and name, filtered by
// freshness at read time, with a sweep that notices expiry even though nats-server 2.9 sends none.
import { isFresh, type AgentRecord, type McpRecord, type RegistryRecord } from './record.ts';
import type { AgentQuery, RegistryChange, RegistryView } from './types.ts';

export class RecordView implements RegistryView {
  readonly #ttlMs: number;
  readonly #byKey = new Map<string, RegistryRecord>();
  readonly #agents = new Map<string, Map<string, AgentRecord>>();
  readonly #mcp = new Map<string, Map<string, McpRecord>>();
  readonly #listeners = new Set<() => void>();
  /** Registry outages [start, end]: time during which no one could heartbeat does not age a record. */
  readonly #outages: [number, number][] = [];
  #outageStart: number | undefined;
  /** Keys that were fresh at the last sweep, to notice when one goes stale. */
  #freshKeys = new Set<string>();
  readonly #sweep: NodeJS.Timeout;

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
    this.#sweep = setInterval(() => this.#sweepStale(), Math.max(100, Math.floor(ttlMs / 10)));
    this.#sweep.unref();
  }

  apply(change: RegistryChange): void {
    const old = this.#byKey.get(change.key);
    if (old) this.#index(old).get(old.name)?.delete(change.key);
    if (change.op === 'put') {
      this.#byKey.set(change.key, change.record);
      const byName = this.#index(change.record);
      let instances = byName.get(change.record.name);
      if (!instances) byName.set(change.record.name, (instances = new Map()));
      instances.set(change.key, change.record);
    } else {
      this.#byKey.delete(change.key);
    }
    this.#emit();
  }

  agents(query: AgentQuery = {}): AgentRecord[] {
    const names = query.name === undefined ? [...this.#agents.keys()] : [query.name];
    return names.flatMap((n) => this.agentInstances(n)).filter((r) => matches(r, query));
  }

  agentInstances(name: string): AgentRecord[] {
    return this.#fresh(this.#agents.get(name));
  }

  mcpServers(): McpRecord[] {
    return [...this.#mcp.keys()].flatMap((n) => this.mcpInstances(n));
  }

  mcpInstances(server: string): McpRecord[] {
    return this.#fresh(this.#mcp.get(server));
  }

  /**
   * Told when the backend connection drops and returns. While it is down the view keeps routing from
   * what it has: records do not age during an outage, since their owners cannot heartbeat either.
   */
  setConnected(connected: boolean): void {
    const now = Date.now();
    if (!connected) this.#outageStart ??= now;
    else if (this.#outageStart !== undefined) {
      this.#outages.push([this.#outageStart, now]);
      if (this.#outages.length > 32) this.#outages.shift();
      this.#outageStart = undefined;
    }
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    clearInterval(this.#sweep);
    this.#listeners.clear();
  }

  #fresh<R extends RegistryRecord>(instances: Map<string, R> | undefined): R[] {
    if (!instances) return [];
    const now = Date.now();
    const out: R[] = [];
    for (const r of instances.values()) if (this.#isFresh(r, now)) out.push(r);
    return out;
  }

  /** Fresh when its heartbeat is younger than the TTL, not counting registry outages since then. */
  #isFresh(record: RegistryRecord, now: number): boolean {
    if (isFresh(record, this.#ttlMs, now)) return true;
    const since = Date.parse(record.heartbeatAt);
    let paused = 0;
    for (const [start, end] of this.#outages) paused += Math.max(0, Math.min(end, now) - Math.max(start, since));
    if (this.#outageStart !== undefined) paused += Math.max(0, now - Math.max(this.#outageStart, since));
    return now - since - paused < this.#ttlMs;
  }

  #index(record: RegistryRecord): Map<string, Map<string, RegistryRecord>> {
    return (record.kind === 'agent' ? this.#agents : this.#mcp) as Map<string, Map<string, RegistryRecord>>;
  }

  #sweepStale(): void {
    const now = Date.now();
    const fresh = new Set<string>();
    for (const [key, r] of this.#byKey) if (this.#isFresh(r, now)) fresh.add(key);
    const changed = fresh.size !== this.#freshKeys.size || [...fresh].some((k) => !this.#freshKeys.has(k));
    this.#freshKeys = fresh;
    if (changed) this.#emit();
  }

  #emit(): void {
    for (const listener of this.#listeners) {
      try { listener(); } catch { /* a listener's failure is its own */ }
    }
  }
}

function matches(record: AgentRecord, query: AgentQuery): boolean {
  const skills = record.card.skills ?? [];
  if (query.skill !== undefined && !skills.some((s) => s.id === query.skill || (s.tags ?? []).includes(query.skill ?? ''))) return false;
  if (query.tag !== undefined && !skills.some((s) => (s.tags ?? []).includes(query.tag ?? ''))) return false;
  for (const [k, v] of Object.entries(query.labels ?? {})) if (record.labels[k] !== v) return false;
  return true;
}
