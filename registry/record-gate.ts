// Between a backend's watch and the view: heartbeats only move forward (an older or equal replayed
// value is refused), a raw delete or purge removes nothing (a live record ages out by its TTL unless
// its owner writes a signed tombstone), and a tombstone removes the record at once. A heartbeatAt
// further ahead than one TTL (clock skew) is refused: it would keep a record alive past its owner.
import type { RejectReason } from './record-codec.ts';
import type { RegistryChange } from './types.ts';

const EVICT_EVERY = 256;

export class RecordGate {
  readonly #ttlMs: number;
  readonly #onReject: (key: string, reason: RejectReason, message: string) => void;
  /** Per key: the last accepted heartbeatAt and the value's tag. */
  readonly #last = new Map<string, { at: number; tag: string | undefined }>();
  #puts = 0;

  constructor(ttlMs: number, onReject: (key: string, reason: RejectReason, message: string) => void) {
    this.#ttlMs = ttlMs;
    this.#onReject = onReject;
  }

  /** What the view should apply for a backend change, or undefined to ignore it. */
  filter(change: RegistryChange): RegistryChange | undefined {
    if (change.op === 'delete') return undefined; // raw delete, purge, or an invalid overwrite: the TTL decides
    if (change.op === 'vanished') return change;
    const { key, record, tag } = change;
    const at = Date.parse(record.heartbeatAt);
    if (at > Date.now() + this.#ttlMs) {
      this.#onReject(key, 'invalid', `a value at '${key}' has heartbeatAt ${record.heartbeatAt}, more than the TTL ahead of this clock`);
      return undefined;
    }
    const last = this.#last.get(key);
    if (last && at <= last.at) {
      // The same value delivered again (a watch restarted after a reconnect) is no replay.
      if (at < last.at || tag !== last.tag) {
        this.#onReject(key, 'replay', `a value at '${key}' with heartbeatAt ${record.heartbeatAt} is not newer than the last accepted one (${new Date(last.at).toISOString()})`);
      }
      return undefined;
    }
    this.#last.set(key, { at, tag });
    if (++this.#puts % EVICT_EVERY === 0) this.#evict();
    return record.withdrawn ? { op: 'delete', key } : change;
  }

  /** Forgets what was accepted at `key` (its record was dropped): the same value may be admitted again later. */
  forget(key: string): void {
    this.#last.delete(key);
  }

  /** Heartbeats older than the TTL (with margin) need no memory: a replay of one is stale anyway. */
  #evict(): void {
    const horizon = Date.now() - 3 * this.#ttlMs;
    for (const [key, last] of this.#last) if (last.at < horizon) this.#last.delete(key);
  }
}
