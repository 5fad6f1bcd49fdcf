// The NATS KV watch that survives outages: a fresh snapshot on every (re)start, reconciled against
// what was delivered before, so keys that vanished while the server was away arrive as deletes.
// It owns no connection; nats-backend.ts decides when to restart it, and reports the stream's last
// sequence so a watcher that stopped delivering (its consumer's node died: the client would notice
// only after 2 missed idle heartbeats, 10 s, or 60 s once it recreated the consumer itself) is
// restarted on a live node.
import type { KV, KvWatchEntry } from '@nats-io/kv';
import { MeshError } from '../sdk/errors.ts';
import { abortError, pause } from './abort.ts';
import { errorMessage, publish } from './diagnostics.ts';
import type { RecordCodec } from './record-codec.ts';
import type { RegistryChange, WatchOptions } from './types.ts';

export interface NatsWatchDeps {
  /** The bucket handle as it is (no request). */
  bucket(): KV | undefined;
  /** Returns the bucket, creating it again if the server lost it. */
  ensureBucket(): Promise<KV>;
  /** True once the backend is closed: the watch stops for good. */
  isClosed(): boolean;
  /** Bound on loading the first snapshot. */
  syncTimeoutMs: number;
  /** Verifies and decodes one stored value. */
  decode: RecordCodec['decode'];
}

const MAX_BACKOFF_MS = 2000;

export class NatsWatch {
  /** Resolves once the first snapshot is delivered; rejects if that cannot happen. */
  readonly synced: Promise<void>;
  readonly #deps: NatsWatchDeps;
  readonly #onChange: (change: RegistryChange) => void;
  readonly #onInvalid: ((key: string, err: unknown) => void) | undefined;
  readonly #signal: AbortSignal;
  /** Keys delivered as live puts and not deleted since: what a new snapshot is reconciled against. */
  readonly #live = new Set<string>();
  #current: { stop(): void } | undefined;
  /** The highest stream sequence the current watcher delivered, and what it was at the last progress check. */
  #revision = 0;
  #checkedRevision = 0;
  /** The stream's last sequence at the last progress check: owed by the next one. */
  #owed: number | undefined;
  #restartReason: string | undefined;
  #wake: () => void = () => undefined;
  #markSynced: () => void = () => undefined;
  #failSync: (err: unknown) => void = () => undefined;

  constructor(deps: NatsWatchDeps, onChange: (change: RegistryChange) => void, { signal, onInvalid }: WatchOptions) {
    this.#deps = deps;
    this.#onChange = onChange;
    this.#onInvalid = onInvalid;
    this.#signal = signal;
    this.synced = new Promise<void>((resolve, reject) => { this.#markSynced = resolve; this.#failSync = reject; });
    this.synced.catch(() => undefined);
    const timeout = setTimeout(() => {
      this.#failSync(new MeshError('REGISTRY_UNAVAILABLE', `the registry snapshot did not load within ${deps.syncTimeoutMs} ms`));
    }, deps.syncTimeoutMs);
    timeout.unref();
    this.synced.then(() => clearTimeout(timeout), () => clearTimeout(timeout));
    signal.addEventListener('abort', () => { this.#current?.stop(); this.#wake(); }, { once: true });
    void this.#loop();
  }

  /**
   * `lastSeq`: the bucket stream's last sequence, as its leader just reported it (`messages`: how many
   * it holds). A watcher that has not delivered what the stream held at the previous check, and has
   * delivered nothing since, is stuck and is restarted.
   */
  checkProgress(lastSeq: number, messages: number): void {
    const owed = this.#owed;
    const stalled = this.#revision === this.#checkedRevision;
    this.#owed = messages > 0 ? lastSeq : undefined; // an empty stream's last message expired: nothing is owed
    this.#checkedRevision = this.#revision;
    if (this.#current && owed !== undefined && stalled && this.#revision < owed) {
      this.restart(`the watcher stopped at revision ${this.#revision} while the stream had ${owed}`);
    }
  }

  /** Drops the current watcher and starts over with a new snapshot (after a reconnect). */
  restart(reason: string): void {
    if (this.#signal.aborted) return;
    this.#restartReason = reason;
    this.#current?.stop();
    this.#wake();
  }

  async #loop(): Promise<void> {
    let failures = 0;
    while (!this.#signal.aborted && !this.#deps.isClosed()) {
      this.#restartReason = undefined; // whatever asked for a restart is served by the watcher started now
      try {
        await this.#runOnce();
        if (this.#restartReason === undefined && !this.#signal.aborted) throw new Error('the watcher ended by itself');
        failures = 0;
      } catch (err) {
        failures++;
        this.#restartReason ??= `watch failed: ${errorMessage(err)}`;
      }
      if (this.#signal.aborted || this.#deps.isClosed()) break;
      publish({ type: 'watch-restart', backend: 'nats', reason: this.#restartReason ?? 'restart requested' });
      if (failures > 0) {
        // Jittered, so the sidecars of a mesh do not ask a recovering cluster in step.
        const p = pause(Math.min(MAX_BACKOFF_MS, 100 * 2 ** failures) * (0.5 + Math.random() / 2), this.#signal);
        this.#wake = p.wake;
        await p.done;
      }
    }
    this.#failSync(this.#signal.aborted ? abortError(this.#signal, 'registry watch')
      : new MeshError('REGISTRY_UNAVAILABLE', 'the registry was closed before its snapshot loaded'));
  }

  /** One watcher from snapshot to end; returns when it is stopped or its consumer gives up. */
  async #runOnce(): Promise<void> {
    // The handle as it is: ensureBucket() asks STREAM.INFO, which nats-server 2.9 may leave unanswered
    // for seconds after an election while it already serves consumers. Only a missing stream needs it.
    let kv = this.#deps.bucket() ?? await this.#deps.ensureBucket();
    let watcher: Awaited<ReturnType<KV['watch']>>;
    try {
      watcher = await kv.watch({ key: '>' });
    } catch (err) {
      if (!/stream not found/i.test(errorMessage(err))) throw err;
      kv = await this.#deps.ensureBucket();
      watcher = await kv.watch({ key: '>' });
    }
    this.#current = watcher;
    this.#revision = 0;
    this.#checkedRevision = 0;
    this.#owed = undefined;
    if (this.#signal.aborted || this.#restartReason !== undefined) watcher.stop();
    const snapshot = { seen: new Set<string>(), done: false };
    void this.#detectEmptySnapshot(kv, watcher, snapshot);
    try {
      for await (const e of watcher) {
        this.#revision = Math.max(this.#revision, e.revision);
        await this.#deliver(e, snapshot.done ? undefined : snapshot.seen);
        if (e.isUpdate || e.delta === 0) this.#endSnapshot(snapshot);
      }
    } finally {
      if (this.#current === watcher) this.#current = undefined;
    }
  }

  async #deliver(e: KvWatchEntry, seen: Set<string> | undefined): Promise<void> {
    if (e.operation !== 'PUT') {
      if (this.#live.delete(e.key)) this.#onChange({ op: 'delete', key: e.key });
      return;
    }
    try {
      const { record, granted, tag } = await this.#deps.decode(e.key, e.string());
      this.#live.add(e.key);
      seen?.add(e.key);
      this.#onChange({ op: 'put', key: e.key, record, granted, tag });
    } catch (err) {
      this.#onInvalid?.(e.key, err);
      if (this.#live.delete(e.key)) this.#onChange({ op: 'delete', key: e.key });
    }
  }

  /** The snapshot is complete: whatever was live before and is not in it has vanished meanwhile. */
  #endSnapshot(snapshot: { seen: Set<string>; done: boolean }): void {
    if (snapshot.done) return;
    snapshot.done = true;
    for (const key of this.#live) {
      if (!snapshot.seen.has(key)) {
        this.#live.delete(key);
        this.#onChange({ op: 'vanished', key });
      }
    }
    this.#markSynced();
  }

  /** An empty bucket sends the watcher nothing at all, so an empty snapshot is read off the stream. */
  async #detectEmptySnapshot(kv: KV, watcher: { stop(): void }, snapshot: { seen: Set<string>; done: boolean }): Promise<void> {
    while (!snapshot.done && this.#current === watcher && !this.#signal.aborted) {
      const status = await kv.status().catch(() => undefined);
      if (status?.values === 0) this.#endSnapshot(snapshot);
      if (!snapshot.done) await pause(250, this.#signal).done;
    }
  }
}
