// The registry facade a sidecar opens: picks the backend (NATS when configured, embedded otherwise),
// feeds the in-memory view from its watch (through the gate: forward-only heartbeats, tombstones), and
// owns this process's announcements; rebind() applies changed name grants (the policy's registrations)
// to what it holds. It never logs: rejected records, outages and failed heartbeats go
// to diagnostics_channel 'agentmesh:registry'.
import { MeshError } from '../sdk/errors.ts';
import { abortError } from './abort.ts';
import { announce, type AnnouncedRecord, type Announcement } from './announcer.ts';
import { errorMessage, publish } from './diagnostics.ts';
import { openEmbeddedBackend } from './embedded-backend.ts';
import type { NatsAccess } from './nats-access.ts';
import { recordKey, type AgentRecord, type McpRecord, type RegistryRecord } from './record.ts';
import { recordCodec, rejectReason, type RecordCodec, type RecordSigner, type RecordVerifier } from './record-codec.ts';
import { RefusedValues } from './refused-values.ts';
import { RecordGate } from './record-gate.ts';
import type { AgentQuery, RegistryBackend, RegistryView } from './types.ts';
import { RecordView } from './view.ts';

/** At most this many dropped records are kept for a grant that comes back. */
const MAX_DROPPED = 1024;

export interface RegistryOptions {
  /** NATS server URL(s); the embedded backend is used when absent. */
  nats?: string | string[];
  /** NATS: mTLS and/or credentials (anonymous without). */
  natsAccess?: NatsAccess;
  /** NATS KV bucket; default 'agentmesh'. */
  bucket?: string;
  /** Records whose heartbeat is older than this are gone; heartbeats go out every ttl/3. */
  ttlMs: number;
  /** Embedded backend: the directory the processes on this host share. */
  dir?: string;
  /** Connection name shown by the NATS server. */
  name?: string;
  /** Aborts opening; aborting later closes the registry. */
  signal?: AbortSignal;
  /** NATS: bound on the first connection and the first snapshot (default 5 s). */
  timeoutMs?: number;
  /** Called for each stored value that fails validation or verification (it is skipped; this is never fatal). */
  onInvalid?: (key: string, err: unknown) => void;
  /** Signs every value this process writes (a sidecar: its workload key). Plain JSON without one. */
  signer?: RecordSigner;
  /** Verifies every value read (chain, identity, name binding). Without one, values are only validated. */
  verifier?: RecordVerifier;
}

export interface Registry extends RegistryView, AsyncDisposable {
  readonly backend: 'nats' | 'embedded';
  /** Writes the record (awaited), then keeps it fresh until withdrawn or until close(). */
  announce(record: AnnouncedRecord, options?: { signal?: AbortSignal }): Promise<Announcement>;
  /** True once the initial snapshot is loaded (always, once openRegistry has resolved). */
  synced(): boolean;
  /** True while the backend is reachable and writable. */
  connected(): boolean;
  /**
   * The grants behind the name binding changed (the mesh policy's `registrations`, read by the verifier):
   * drops records whose owner no longer owns its name, marks newly granted ones, and admits values that
   * were refused only for the name binding. Runs one at a time; never rejects.
   */
  rebind(): Promise<void>;
  /** How many of this process's announcements failed their last write (e.g. NATS without a JetStream quorum). */
  failingWrites(): number;
  /** Withdraws announcements, stops the watch, closes the backend. Idempotent. */
  close(): Promise<void>;
  /** Resolves once close() has finished; never rejects. */
  readonly closed: Promise<void>;
}

export async function openRegistry(options: RegistryOptions): Promise<Registry> {
  const { ttlMs, signal } = options;
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new MeshError('CONFIG_INVALID', `registry.ttl: expected a positive duration, got ${ttlMs} ms`);
  const refused = new RefusedValues();
  const codec = refused.wrap(recordCodec(options.signer, options.verifier));
  const backend = await openBackend(options, codec);
  const registry = new BackendRegistry(backend, ttlMs, { codec, refused, verifier: options.verifier });
  const onInvalid = (key: string, err: unknown): void => {
    publish({ type: 'rejected', backend: backend.kind, key, reason: rejectReason(err), error: errorMessage(err) });
    options.onInvalid?.(key, err);
  };
  try {
    await registry.load(onInvalid, signal);
  } catch (err) {
    await registry.close();
    throw err;
  }
  if (signal) {
    const onAbort = (): void => { void registry.close(); };
    signal.addEventListener('abort', onAbort, { once: true });
    void registry.closed.then(() => signal.removeEventListener('abort', onAbort));
  }
  return registry;
}

/** A registry over one backend: the view it feeds, and the announcements this process made. */
class BackendRegistry implements Registry {
  readonly backend: 'nats' | 'embedded';
  readonly closed: Promise<void>;
  readonly #store: RegistryBackend;
  readonly #ttlMs: number;
  readonly #view: RecordView;
  readonly #stop = new AbortController();
  readonly #announcements = new Set<Announcement>();
  /** One entry per announcement whose last write failed. */
  readonly #failing = new Set<{ key: string }>();
  readonly #offConnection: () => void;
  #closing: Promise<void> | undefined;
  #resolveClosed: () => void = () => undefined;

  readonly #gate: RecordGate;
  readonly #binding: Binding;
  #rebinding: Promise<void> = Promise.resolve();
  /** Records rebind() dropped, by key, until a grant names them again or a newer value replaces them. */
  readonly #dropped = new Map<string, RegistryRecord>();

  constructor(store: RegistryBackend, ttlMs: number, binding: Binding) {
    this.backend = store.kind;
    this.#binding = binding;
    this.#store = store;
    this.#ttlMs = ttlMs;
    const backend = store.kind;
    this.#gate = new RecordGate(ttlMs, (key, reason, error) => publish({ type: 'rejected', backend, key, reason, error }));
    this.#view = new RecordView({ ttlMs, onOwnershipConflict: (key, reason, error) => publish({ type: 'rejected', backend, key, reason, error }) });
    this.#offConnection = store.onConnectionChange((connected, since) => this.#view.setConnected(connected, since));
    this.closed = new Promise<void>((resolve) => { this.#resolveClosed = resolve; });
  }

  /** Starts the watch; resolves once the initial snapshot is in the view. */
  async load(onInvalid: (key: string, err: unknown) => void, signal: AbortSignal | undefined): Promise<void> {
    const watchSignal = signal ? AbortSignal.any([this.#stop.signal, signal]) : this.#stop.signal;
    await this.#store.watch((change) => {
      if (change.op === 'put') this.#dropped.delete(change.key);
      const passed = this.#gate.filter(change);
      if (passed) this.#view.apply(passed);
    }, { signal: watchSignal, onInvalid });
  }

  agents(query?: AgentQuery): AgentRecord[] { return this.#view.agents(query); }
  agentInstances(name: string): AgentRecord[] { return this.#view.agentInstances(name); }
  mcpServers(): McpRecord[] { return this.#view.mcpServers(); }
  mcpInstances(server: string): McpRecord[] { return this.#view.mcpInstances(server); }
  onChange(listener: () => void): () => void { return this.#view.onChange(listener); }
  synced(): boolean { return true; }
  connected(): boolean { return this.#store.connected(); }
  failingWrites(): number { return this.#failing.size; }

  rebind(): Promise<void> {
    const run = this.#rebinding.then(() => this.#rebindOnce()).catch(() => undefined);
    this.#rebinding = run;
    return run;
  }

  async #rebindOnce(): Promise<void> {
    const { verifier, refused, codec } = this.#binding;
    if (!verifier?.ownership || this.#closing) return;
    for (const { key, record, granted } of this.#view.held()) {
      const ownership = await verifier.ownership(record).catch(() => 'none' as const);
      if (ownership === 'none') {
        if (!this.#view.drop(key, record)) continue;
        this.#gate.forget(key);
        if (this.#dropped.size >= MAX_DROPPED) this.#dropped.delete(this.#dropped.keys().next().value ?? '');
        this.#dropped.set(key, record);
        publish({ type: 'rejected', backend: this.backend, key, reason: 'name_not_owned', error: `registry value at '${key}': ${record.identity} no longer owns the ${record.kind === 'agent' ? 'agent' : 'MCP server'} name '${record.name}' (the grants changed)` });
      } else if ((ownership === 'granted') !== granted) {
        this.#view.apply({ op: 'put', key, record, granted: ownership === 'granted' });
      }
    }
    // Dropped earlier and granted again before its owner's next heartbeat: its signature was verified then.
    for (const [key, record] of [...this.#dropped]) {
      const ownership = await verifier.ownership(record).catch(() => 'none' as const);
      if (ownership === 'none') continue;
      this.#dropped.delete(key);
      const passed = this.#gate.filter({ op: 'put', key, record, granted: ownership === 'granted' });
      if (passed) this.#view.apply(passed);
    }
    for (const [key, value] of refused.take()) {
      const sealed = await codec.decode(key, value).catch(() => undefined);
      const passed = sealed && this.#gate.filter({ op: 'put', key, record: sealed.record, granted: sealed.granted, tag: sealed.tag });
      if (passed) this.#view.apply(passed);
    }
  }

  async announce(record: AnnouncedRecord, options: { signal?: AbortSignal } = {}): Promise<Announcement> {
    if (this.#closing) throw new MeshError('SHUTTING_DOWN', 'the registry is closed');
    const key = recordKey(record);
    let failures = 0;
    const failing = { key };
    const inner = await announce(this.#store, record, {
      ttlMs: this.#ttlMs,
      onError: (err) => {
        failures++;
        this.#failing.add(failing);
        publish({ type: 'heartbeat-failed', backend: this.backend, key, error: errorMessage(err) });
      },
      onWritten: () => {
        if (failures > 0) publish({ type: 'heartbeat-recovered', backend: this.backend, key, failures });
        failures = 0;
        this.#failing.delete(failing);
      },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const announcement: Announcement = {
      key,
      update: (patch) => inner.update(patch),
      withdraw: () => { this.#announcements.delete(announcement); this.#failing.delete(failing); return inner.withdraw(); },
    };
    this.#announcements.add(announcement);
    if (this.#closing) await announcement.withdraw(); // close() began while the first put was under way
    return announcement;
  }

  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      try {
        await Promise.allSettled([...this.#announcements].map((a) => a.withdraw()));
      } finally {
        this.#stop.abort();
        this.#offConnection();
        this.#view.close();
        await this.#store.close().catch(() => undefined);
        this.#resolveClosed();
      }
    })());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** What rebind() needs: the codec the backend decodes with, the values it refused for the name binding, the verifier. */
interface Binding {
  codec: RecordCodec;
  refused: RefusedValues;
  verifier: RecordVerifier | undefined;
}

async function openBackend(options: RegistryOptions, codec: RecordCodec): Promise<RegistryBackend> {
  const { ttlMs, signal } = options;
  if (signal?.aborted) throw abortError(signal, 'opening the registry');
  if (options.nats !== undefined && options.nats.length > 0) {
    // The NATS client loads only when it is used: an embedded registry never needs it.
    const { openNatsBackend } = await import('./nats-backend.ts');
    return openNatsBackend({
      servers: options.nats, ttlMs, codec,
      ...(options.bucket !== undefined ? { bucket: options.bucket } : {}),
      ...(options.name !== undefined ? { name: options.name } : {}),
      ...(options.natsAccess !== undefined ? { access: options.natsAccess } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(signal ? { signal } : {}),
    });
  }
  if (options.dir !== undefined) return openEmbeddedBackend({ dir: options.dir, ttlMs, codec, ...(signal ? { signal } : {}) });
  throw new MeshError('CONFIG_INVALID', 'registry: set registry.nats for NATS, or registry.dir for the embedded registry');
}
