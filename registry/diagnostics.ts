// The registry's diagnostics_channel ('agentmesh:registry'): registry/ never logs; it publishes these
// events and the sidecar (or a test) subscribes. Publishing costs nothing when nobody listens.
import { channel } from 'node:diagnostics_channel';

export const REGISTRY_CHANNEL = 'agentmesh:registry';
const registryChannel = channel(REGISTRY_CHANNEL);

import type { RejectReason } from './record-codec.ts';

type Backend = 'nats' | 'embedded';

export type RegistryEvent =
  /**
   * A stored value was not used: it failed validation or verification, replays an older heartbeat, or
   * claims an MCP server name another identity claims too. Published each time it is seen (a forged
   * record is seen at every one of its heartbeats): subscribers count it, and rate-limit any logging.
   */
  | { type: 'rejected'; backend: Backend; key: string; reason: RejectReason; error: string }
  /** The NATS connection dropped (the view keeps serving what it knows) or came back. */
  | { type: 'disconnect' | 'reconnect'; backend: 'nats'; server: string; connection: string }
  /**
   * Connected, but JetStream does not answer for the bucket (a cluster without a quorum): writes fail and
   * the view keeps serving what it knows (its records do not age) until it answers again.
   */
  | { type: 'jetstream-unavailable'; backend: 'nats'; connection: string; error: string }
  | { type: 'jetstream-available'; backend: 'nats'; connection: string }
  /** The watch was (re)started after a reconnect or a failure; `reason` says which. */
  | { type: 'watch-restart'; backend: Backend; reason: string }
  /** A heartbeat re-put of one of this process's records failed; the next one will try again. */
  | { type: 'heartbeat-failed'; backend: Backend; key: string; error: string }
  /** A write of that record landed again after `failures` failed ones. */
  | { type: 'heartbeat-recovered'; backend: Backend; key: string; failures: number }
  /** The embedded backend removed a file whose owner stopped heart-beating long ago (or a corrupt one). */
  | { type: 'reaped'; backend: 'embedded'; key: string; reason: 'stale' | 'corrupt' | 'temp' };

export function publish(event: RegistryEvent): void {
  if (registryChannel.hasSubscribers) registryChannel.publish(event);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
