// Does a JetStream stream's leader still have a quorum? A leader that lost its peers (two nodes of
// three gone) keeps answering STREAM.INFO and naming itself until its own lost-quorum check steps it
// down, 10–20 s later on nats-server 2.9, while no write can commit. Its replica list says how long
// ago it last heard from each peer; that is what this reads. Pure: no NATS client needed.
import type { ClusterInfo } from '@nats-io/jetstream';

/**
 * A peer the leader has not heard from for this long counts as gone. nats-server's Raft leader
 * sends a heartbeat every second (so a live peer is heard from at least every 2 s or so) and itself
 * treats a peer silent for 3 heartbeats as not alive.
 */
export const PEER_SILENT_MS = 3000;

export interface QuorumLoss {
  /** How long ago (ms) the leader last heard from the peer it needed for a majority: the outage began then. */
  sinceMs: number;
  /** What the leader reported, for logs. */
  reason: string;
}

/** undefined while the leader has heard from a majority of the group (itself included) within PEER_SILENT_MS. */
export function quorumLoss(cluster: ClusterInfo): QuorumLoss | undefined {
  const replicas = cluster.replicas ?? [];
  const quorum = Math.floor((replicas.length + 1) / 2) + 1;
  // `active` is in nanoseconds; an offline peer (or one never heard from: active 0) counts as silent.
  const silentMs = replicas.map((r) => {
    const ms = Number(r.active) / 1e6;
    // A missing or odd `active` counts as silent: a NaN would date the outage to no time at all.
    if (!Number.isFinite(ms)) return PEER_SILENT_MS;
    return r.offline ? Math.max(ms, PEER_SILENT_MS) : ms;
  }).sort((a, b) => a - b);
  const heard = silentMs.filter((ms) => ms < PEER_SILENT_MS).length;
  if (heard + 1 >= quorum) return undefined;
  const sinceMs = silentMs[quorum - 2] ?? 0;
  return {
    sinceMs,
    reason: `its leader ${cluster.leader ?? '?'} has heard from ${heard} of ${replicas.length} replicas in the last ${PEER_SILENT_MS / 1000} s, `
      + `and needs ${quorum - 1} for a quorum (no write can commit)`,
  };
}
