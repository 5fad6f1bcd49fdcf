// Announces one of this process's records: the first put is awaited, a heartbeat re-puts it every
// ttl/3 with a fresh heartbeatAt and again as soon as the backend is back from an outage; update()
// changes it, withdraw() writes a tombstone (readers ignore raw deletes). Writes are serialised so an
// older one never lands last.
import { MeshError } from '../sdk/errors.ts';
import { abortable } from './abort.ts';
import { validateRecord } from './codec.ts';
import { recordKey, type AgentRecord, type McpRecord, type RegistryRecord } from './record.ts';
import type { RegistryBackend } from './types.ts';

export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** What a caller announces; the announcer owns the times. */
export type AnnouncedRecord = DistributiveOmit<RegistryRecord, 'startedAt' | 'heartbeatAt'>;
/** `card` applies to agent records only, `tools` to MCP records only. */
export interface AnnouncementPatch {
  card?: AgentRecord['card'];
  tools?: McpRecord['tools'];
  labels?: Record<string, string>;
}

export interface Announcement {
  readonly key: string;
  /** Validates and writes the change; if the write fails the change stays and goes out with the next heartbeat. */
  update(patch: AnnouncementPatch): Promise<void>;
  /**
   * Stops heart-beating and writes a tombstone (the record with `withdrawn: true` and a newer
   * heartbeatAt, signed like every write), which readers honour at once. Idempotent.
   */
  withdraw(): Promise<void>;
}

export interface AnnounceOptions {
  ttlMs: number;
  /** A heartbeat or reconnect re-put failed (the next one tries again). */
  onError?: (err: unknown) => void;
  /** A write landed (after failures, this is the recovery). */
  onWritten?: () => void;
  /** Aborts the first put; a record that lands anyway is withdrawn. */
  signal?: AbortSignal;
}

/** The first retry of a failed write (then doubling, up to RETRY_MAX_MS or ttl/3). */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 1000;
/** How long the first write of a record is tried again before announce() fails. */
const FIRST_WRITE_RETRY_MS = 15_000;

export async function announce(backend: RegistryBackend, record: AnnouncedRecord, options: AnnounceOptions): Promise<Announcement> {
  const startedAt = new Date().toISOString();
  let current = validateRecord({ ...record, startedAt, heartbeatAt: startedAt } as RegistryRecord);
  const key = recordKey(current);
  let withdrawn = false;
  let withdrawing: Promise<void> | undefined;
  const report = (err: unknown): void => options.onError?.(err);

  // One write at a time; requests made while one waits share it (it reads `current` when it starts).
  // After a reconnect the re-put goes out at once instead of queueing behind a put stuck in the outage
  // (on one NATS connection publishes still reach the server in order).
  let tail: Promise<unknown> = Promise.resolve();
  let queued: Promise<void> | undefined;
  let latest: Promise<void> = Promise.resolve();
  // A put stuck in an outage can fail after a newer one (the reconnect re-put) has landed: that failure
  // is stale, the record is fresh, and it is not reported.
  let started = 0;
  let landed = 0;
  const write = (immediate = false): Promise<void> => {
    if (queued && !immediate) return queued;
    const start = immediate ? Promise.resolve() : tail.catch(() => undefined);
    const next: Promise<void> = start.then(async () => {
      if (queued === next) queued = undefined;
      if (withdrawn) return;
      const seq = ++started;
      current = { ...current, heartbeatAt: nextBeat(current.heartbeatAt) };
      try {
        await backend.put(current);
      } catch (err) {
        if (seq < landed) return;
        throw err;
      }
      landed = Math.max(landed, seq);
      options.onWritten?.();
    });
    if (!immediate) queued = next;
    tail = Promise.allSettled([tail, next]);
    latest = next;
    return next;
  };

  // A failed heartbeat is tried again soon (every second at most) instead of at the next beat: after a
  // NATS node fails over, the record is fresh again as soon as a write can land.
  const interval = Math.max(50, Math.floor(options.ttlMs / 3));
  let retry: NodeJS.Timeout | undefined;
  let retryMs = Math.min(RETRY_FIRST_MS, interval);
  const beat = (immediate = false): void => {
    write(immediate).then(() => { retryMs = Math.min(RETRY_FIRST_MS, interval); }, (err: unknown) => {
      report(err);
      if (withdrawn || retry) return;
      retry = setTimeout(() => { retry = undefined; if (!queued && !withdrawn) beat(); }, retryMs);
      retry.unref();
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS, interval);
    });
  };
  const timer = setInterval(() => { if (!queued) beat(); }, interval);
  timer.unref();
  const offConnection = backend.onConnectionChange((connected) => { if (connected) beat(true); });

  const withdraw = (): Promise<void> => (withdrawing ??= (async () => {
    withdrawn = true;
    clearInterval(timer);
    clearTimeout(retry);
    offConnection();
    if (!backend.connected()) {
      throw new MeshError('REGISTRY_UNAVAILABLE', `withdrew ${key} but could not delete it: the registry is unreachable (it goes stale within the TTL)`);
    }
    // The tombstone must land after the last put; an older put stuck in an outage went out before it.
    await latest.catch(() => undefined);
    await backend.put({ ...current, withdrawn: true, heartbeatAt: nextBeat(current.heartbeatAt) });
  })());

  // The first write too is tried again while it fails (a NATS failover takes seconds), for a bounded time.
  const firstWrite = async (): Promise<void> => {
    const deadline = Date.now() + FIRST_WRITE_RETRY_MS;
    let wait = Math.min(RETRY_FIRST_MS, interval);
    for (;;) {
      try {
        return await write();
      } catch (err) {
        if (options.signal?.aborted || Date.now() + wait > deadline) throw err;
        report(err);
        await new Promise((resolve) => setTimeout(resolve, wait).unref());
        wait = Math.min(wait * 2, RETRY_MAX_MS, interval);
      }
    }
  };
  try {
    await abortable(firstWrite(), options.signal, `announcing ${key}`);
  } catch (err) {
    clearInterval(timer);
    offConnection();
    withdrawn = true;
    if (options.signal?.aborted) void withdraw().catch(report);
    throw err;
  }

  return {
    key,
    async update(patch) {
      if (withdrawn) throw new MeshError('INTERNAL', `cannot update ${key}: it was withdrawn`);
      if (patch.card !== undefined && current.kind !== 'agent') throw new MeshError('REGISTRY_RECORD_INVALID', `${key} is an MCP record; it has no card`);
      if (patch.tools !== undefined && current.kind !== 'mcp') throw new MeshError('REGISTRY_RECORD_INVALID', `${key} is an agent record; it has no tools`);
      const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
      current = validateRecord({ ...current, ...defined } as RegistryRecord);
      await write();
    },
    withdraw,
  };
}

/** Now, but always after `previous`: readers refuse a value whose heartbeatAt is not newer than the last. */
function nextBeat(previous: string): string {
  return new Date(Math.max(Date.now(), Date.parse(previous) + 1)).toISOString();
}
