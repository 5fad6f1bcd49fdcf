// The shapes every registry backend and the registry facade share. No behaviour here.
import type { AgentRecord, McpRecord, RegistryRecord } from './record.ts';

/**
 * One change seen on a backend's watch. `record` is absent for deletes. `vanished`: the key was missing
 * from the snapshot taken after an outage (the bucket's max age may have dropped it while the server
 * was down); the record is kept until its own TTL runs out, giving its owner time to re-announce.
 */
export type RegistryChange =
  /** `granted`: the owner holds a grant for the name; `tag` tells two values with one heartbeatAt apart. */
  | { op: 'put'; key: string; record: RegistryRecord; granted?: boolean; tag?: string }
  | { op: 'delete'; key: string }
  | { op: 'vanished'; key: string };

export interface WatchOptions {
  /** Stops the watch. Aborting before the snapshot is loaded rejects with MeshError('ABORTED'). */
  signal: AbortSignal;
  /** A stored value that fails validation: reported here, then treated as absent. Never fatal. */
  onInvalid?: (key: string, err: unknown) => void;
}

/** A storage backend: NATS JetStream KV, or the embedded single-host store. */
export interface RegistryBackend {
  readonly kind: 'nats' | 'embedded';
  /** Validates, encodes (signs, when the registry was given a signer) and writes (create or overwrite) one record. */
  put(record: RegistryRecord, options?: { signal?: AbortSignal }): Promise<void>;
  delete(key: string, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Delivers every current record as a put and resolves once that snapshot is delivered; live changes
   * follow until the signal aborts. Invalid values go to `onInvalid` and are skipped. Survives outages:
   * after one, keys that vanished meanwhile are delivered as deletes.
   */
  watch(onChange: (change: RegistryChange) => void, options: WatchOptions): Promise<void>;
  /** True while the backend can be written to (NATS connected; embedded always). */
  connected(): boolean;
  /**
   * Calls `listener(false)` when the backend becomes unreachable and `listener(true)` once it is
   * writable again (NATS: reconnected and the bucket is there). The embedded backend never calls it.
   * `since` (with false): the wall-clock time the outage began, when the backend learnt of it later
   * (a NATS stream leader that lost its quorum still answers for a while).
   */
  onConnectionChange(listener: (connected: boolean, since?: number) => void): () => void;
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
  /**
   * Called after every change to the set of live records or to their content (including expiry by
   * staleness); a heartbeat that only moves `heartbeatAt` is not a change.
   */
  onChange(listener: () => void): () => void;
}
