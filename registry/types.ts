// The shapes every registry backend and the registry facade share. No behaviour here.
import type { AgentRecord, McpRecord, RegistryRecord } from './record.ts';

/** One change seen on a backend's watch. `record` is absent for deletes. */
export type RegistryChange =
  | { op: 'put'; key: string; record: RegistryRecord }
  | { op: 'delete'; key: string };

/** A storage backend: NATS JetStream KV, or the embedded single-host store. */
export interface RegistryBackend {
  readonly kind: 'nats' | 'embedded';
  /** Validates and writes (create or overwrite) one record. */
  put(record: RegistryRecord, options?: { signal?: AbortSignal }): Promise<void>;
  delete(key: string, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Delivers every current record as a put and resolves once that snapshot is delivered; live changes
   * follow until the signal aborts. Invalid values go to `onInvalid` and are skipped. Survives outages.
   */
  watch(onChange: (change: RegistryChange) => void, options: { signal: AbortSignal; onInvalid?: (key: string, err: unknown) => void }): Promise<void>;
  /** True while the backend can be written to (NATS connected; embedded always). */
  connected(): boolean;
  /** Calls `listener` whenever the connection is lost or regained. */
  onConnectionChange(listener: (connected: boolean) => void): void;
  close(): Promise<void>;
}

export interface AgentQuery {
  name?: string;
  /** Matches a card skill id or a skill tag. */
  skill?: string;
  /** Matches a skill tag only. */
  tag?: string;
  /** All given labels must match exactly. */
  labels?: Record<string, string>;
}

/** The read side a sidecar routes from: a watch-fed, in-memory index with staleness checks. */
export interface RegistryView {
  agents(query?: AgentQuery): AgentRecord[];
  /** Live instances of one agent, or [] when none. */
  agentInstances(name: string): AgentRecord[];
  mcpServers(): McpRecord[];
  mcpInstances(server: string): McpRecord[];
  /** Called after every change to the set of live records (including expiry by staleness). */
  onChange(listener: () => void): () => void;
}
