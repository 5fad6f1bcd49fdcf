// The watch-fed, in-memory view a sidecar routes from: live records indexed by name, skill and tag,
// filtered by freshness at read time, with a sweep that notices expiry (nats-server 2.9 sends none).
// It never talks to a backend itself; whoever owns it feeds it with apply() and setConnected().
// MCP server names claimed by two identities are served by neither (mcp-owners.ts).
import type { AgentRecord, McpRecord, RegistryRecord } from './record.ts';
import { McpOwners, type OwnershipReport } from './mcp-owners.ts';
import { OutageClock } from './outage-clock.ts';
import type { AgentQuery, RegistryChange, RegistryView } from './types.ts';

export interface RecordViewOptions {
  /** A record whose heartbeatAt is older than this is gone. */
  ttlMs: number;
  /** How often the sweep looks for records gone stale; default ttl/10 within [50 ms, 1 s]. */
  sweepMs?: number;
  /** An MCP server name claimed by several identities, or by one without the grant another holds. */
  onOwnershipConflict?: OwnershipReport;
}

interface Entry<R extends RegistryRecord = RegistryRecord> {
  record: R;
  /** The record without heartbeatAt: a heartbeat alone is not a change listeners hear about. */
  signature: string;
  /** On the outage clock: heartbeatAt + TTL. */
  expiresAt: number;
  /** The owner holds a grant for the name (decides MCP server names claimed by several identities). */
  granted: boolean;
}

export class RecordView implements RegistryView {
  readonly #ttlMs: number;
  readonly #clock = new OutageClock();
  readonly #entries = new Map<string, Entry>();
  /** name → key → entry, per kind. */
  readonly #agents = new Map<string, Map<string, Entry<AgentRecord>>>();
  readonly #mcp = new Map<string, Map<string, Entry<McpRecord>>>();
  /**
   * agentInstances() answers by name, read on every call a sidecar forwards (twice or more): kept, frozen,
   * while every instance in it is fresh, until the first of them expires or the name's records change.
   */
  readonly #agentLists = new Map<string, { list: readonly AgentRecord[]; until: number }>();
  /** Skill id or tag → agent keys; and tag → agent keys. */
  readonly #bySkill = new Map<string, Set<string>>();
  readonly #byTag = new Map<string, Set<string>>();
  readonly #listeners = new Set<() => void>();
  readonly #sweep: NodeJS.Timeout;
  #nextExpiry = Number.POSITIVE_INFINITY;
  #sweepQueued = false;
  readonly #owners: McpOwners;

  constructor({ ttlMs, sweepMs, onOwnershipConflict }: RecordViewOptions) {
    this.#ttlMs = ttlMs;
    this.#owners = new McpOwners(onOwnershipConflict ?? (() => undefined));
    this.#sweep = setInterval(() => this.sweep(), sweepMs ?? Math.min(1000, Math.max(50, Math.floor(ttlMs / 10))));
    this.#sweep.unref();
  }

  /** Applies one watch change; a put of an already-stale record counts as a delete. */
  apply(change: RegistryChange): void {
    // Not a delete: the record ages out on its own unless its owner re-announces it first.
    if (change.op === 'vanished') return;
    const old = this.#entries.get(change.key);
    const expiresAt = change.op === 'put' ? this.#clock.at(Date.parse(change.record.heartbeatAt)) + this.#ttlMs : 0;
    if (change.op === 'delete' || !(this.#clock.now() < expiresAt)) {
      if (!old) return;
      this.#remove(change.key, old.record);
      this.#emit();
      return;
    }
    const { record } = change;
    const granted = change.granted === true;
    const signature = JSON.stringify({ ...record, heartbeatAt: undefined, granted });
    this.#nextExpiry = Math.min(this.#nextExpiry, expiresAt);
    if (old && old.signature === signature) {
      // Heartbeat: same content, later heartbeatAt. Update in place; nobody is told.
      old.record = record;
      old.expiresAt = expiresAt;
      if (record.kind === 'agent') this.#agentLists.delete(record.name);
      return;
    }
    if (old) this.#remove(change.key, old.record);
    const entry: Entry = { record, signature, expiresAt, granted };
    this.#entries.set(change.key, entry);
    this.#add(change.key, entry);
    if (record.kind === 'mcp') this.mcpInstances(record.name); // a new claimant: any conflict is reported now
    this.#emit();
  }

  /**
   * Told when the backend becomes unreachable and when it is back. Meanwhile the view keeps serving what
   * it has, and records do not age: their owners cannot heartbeat either.
   */
  setConnected(connected: boolean, since?: number): void {
    this.#clock.setConnected(connected, connected ? Date.now() : Math.min(since ?? Date.now(), Date.now()));
  }

  agents(query: AgentQuery = {}): AgentRecord[] {
    const out: AgentRecord[] = [];
    const now = this.#clock.now();
    for (const entry of this.#candidates(query)) {
      if (!(now < entry.expiresAt)) this.#sweepSoon();
      else if (matches(entry.record, query)) out.push(entry.record);
    }
    return out.sort(byKey);
  }

  /** The fresh instances of agent `name`. The list may be shared with other callers: it is frozen, not to be changed. */
  agentInstances(name: string): AgentRecord[] {
    const instances = this.#agents.get(name);
    if (!instances) return [];
    const now = this.#clock.now();
    const cached = this.#agentLists.get(name);
    if (cached && now < cached.until) return cached.list as AgentRecord[];
    const out: AgentRecord[] = [];
    let until = Number.POSITIVE_INFINITY;
    for (const entry of instances.values()) {
      if (now < entry.expiresAt) {
        out.push(entry.record);
        until = Math.min(until, entry.expiresAt);
      } else this.#sweepSoon();
    }
    // Kept only while nothing in the map has expired: the outage clock may step back (an outage learnt of
    // late), and an expired record must then be read again, not left out of a kept list.
    if (out.length === instances.size) this.#agentLists.set(name, { list: Object.freeze(out), until });
    return out;
  }

  mcpServers(): McpRecord[] {
    const out: McpRecord[] = [];
    for (const [name, instances] of this.#mcp) out.push(...this.#owners.owned(name, this.#freshEntries(instances)));
    return out.sort(byKey);
  }

  mcpInstances(server: string): McpRecord[] {
    return this.#owners.owned(server, this.#freshEntries(this.#mcp.get(server)));
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  /** Every record held (fresh or not yet swept), with its key and whether its owner holds a grant for its name. */
  held(): { key: string; record: RegistryRecord; granted: boolean }[] {
    return [...this.#entries].map(([key, entry]) => ({ key, record: entry.record, granted: entry.granted }));
  }

  /** Removes `key` if it still holds `record` (its owner lost the name) and tells listeners; false when it moved on. */
  drop(key: string, record: RegistryRecord): boolean {
    const entry = this.#entries.get(key);
    if (entry?.record !== record) return false;
    this.#remove(key, record);
    this.#emit();
    return true;
  }

  /** Drops records gone stale and tells listeners. Runs on a timer; public so tests need not wait for it. */
  sweep(): void {
    const now = this.#clock.now();
    if (now < this.#nextExpiry) return;
    let changed = false;
    let next = Number.POSITIVE_INFINITY;
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#remove(key, entry.record);
        changed = true;
      } else {
        next = Math.min(next, entry.expiresAt);
      }
    }
    this.#nextExpiry = next;
    if (changed) this.#emit();
  }

  close(): void {
    clearInterval(this.#sweep);
    this.#listeners.clear();
  }

  /** The fewest entries that can match: one name, one skill or tag, or else every agent. */
  *#candidates(query: AgentQuery): Iterable<Entry<AgentRecord>> {
    if (query.name !== undefined) {
      yield* this.#agents.get(query.name)?.values() ?? [];
      return;
    }
    if (query.skill === undefined && query.tag === undefined) {
      for (const instances of this.#agents.values()) yield* instances.values();
      return;
    }
    const keys = query.skill !== undefined ? this.#bySkill.get(query.skill) : this.#byTag.get(query.tag ?? '');
    for (const key of keys ?? []) {
      const entry = this.#entries.get(key);
      if (entry?.record.kind === 'agent') yield entry as Entry<AgentRecord>;
    }
  }

  #freshEntries<R extends RegistryRecord>(instances: Map<string, Entry<R>> | undefined): Entry<R>[] {
    if (!instances) return [];
    const now = this.#clock.now();
    const out: Entry<R>[] = [];
    for (const entry of instances.values()) {
      if (now < entry.expiresAt) out.push(entry);
      else this.#sweepSoon();
    }
    return out;
  }

  /** A read saw a record expire before the sweep did: let listeners hear about it right away. */
  #sweepSoon(): void {
    if (this.#sweepQueued) return;
    this.#sweepQueued = true;
    queueMicrotask(() => { this.#sweepQueued = false; this.sweep(); });
  }

  #byName(record: RegistryRecord): Map<string, Map<string, Entry>> {
    return (record.kind === 'agent' ? this.#agents : this.#mcp) as Map<string, Map<string, Entry>>;
  }

  #add(key: string, entry: Entry): void {
    const { record } = entry;
    const byName = this.#byName(record);
    let instances = byName.get(record.name);
    if (!instances) byName.set(record.name, (instances = new Map()));
    instances.set(key, entry);
    if (record.kind !== 'agent') return;
    this.#agentLists.delete(record.name);
    for (const skill of record.card.skills ?? []) {
      addTo(this.#bySkill, skill.id, key);
      for (const tag of skill.tags ?? []) {
        addTo(this.#bySkill, tag, key);
        addTo(this.#byTag, tag, key);
      }
    }
  }

  #remove(key: string, record: RegistryRecord): void {
    this.#entries.delete(key);
    const byName = this.#byName(record);
    const instances = byName.get(record.name);
    instances?.delete(key);
    if (instances?.size === 0) byName.delete(record.name);
    if (record.kind !== 'agent') return;
    this.#agentLists.delete(record.name);
    for (const skill of record.card.skills ?? []) {
      removeFrom(this.#bySkill, skill.id, key);
      for (const tag of skill.tags ?? []) {
        removeFrom(this.#bySkill, tag, key);
        removeFrom(this.#byTag, tag, key);
      }
    }
  }

  #emit(): void {
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch (err) {
        queueMicrotask(() => { throw err; }); // a listener's bug surfaces; the others still run
      }
    }
  }
}

function matches(record: AgentRecord, query: AgentQuery): boolean {
  const skills = record.card.skills ?? [];
  const { skill, tag } = query;
  if (skill !== undefined && !skills.some((s) => s.id === skill || (s.tags ?? []).includes(skill))) return false;
  if (tag !== undefined && !skills.some((s) => (s.tags ?? []).includes(tag))) return false;
  for (const [k, v] of Object.entries(query.labels ?? {})) if (record.labels[k] !== v) return false;
  return true;
}

function byKey(a: RegistryRecord, b: RegistryRecord): number {
  return a.name === b.name ? (a.instance < b.instance ? -1 : 1) : (a.name < b.name ? -1 : 1);
}

function addTo(index: Map<string, Set<string>>, term: string, key: string): void {
  let keys = index.get(term);
  if (!keys) index.set(term, (keys = new Set()));
  keys.add(key);
}

function removeFrom(index: Map<string, Set<string>>, term: string, key: string): void {
  const keys = index.get(term);
  keys?.delete(key);
  if (keys?.size === 0) index.delete(term);
}
