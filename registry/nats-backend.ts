// The NATS JetStream KV backend: bucket max age = TTL, values validated both ways, reconnecting
// forever. After each reconnect it makes sure the bucket exists (a server may come back empty), then
// tells its listeners (announcers re-put) and restarts its watches from a fresh snapshot.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { MeshError } from '../sdk/errors.ts';
import { abortable, pause, throwIfAborted } from './abort.ts';
import { errorMessage, publish } from './diagnostics.ts';
import type { NatsAccess } from './nats-access.ts';
import { openBucket } from './nats-bucket.ts';
import { jetStreamNotReady } from './jetstream-ready.ts';
import { natsAccessOptions } from './nats-connect.ts';
import { NatsWatch } from './nats-watch.ts';
import { recordCodec, type RecordCodec } from './record-codec.ts';
import { recordKey, type RegistryRecord } from './record.ts';
import { quorumLoss } from './stream-quorum.ts';
import type { RegistryBackend, RegistryChange, WatchOptions } from './types.ts';

export interface NatsBackendOptions {
  /** One URL or several (a cluster), e.g. nats://127.0.0.1:4222. */
  servers: string | string[];
  bucket?: string;
  /** The record TTL; also the bucket's max age when this call creates the bucket. */
  ttlMs: number;
  /** Connection name shown by the server. */
  name?: string;
  /** Aborts opening (connect, bucket, first snapshot). */
  signal?: AbortSignal;
  /** Bound on the first connection attempt and on loading the first snapshot; reconnects go on forever. Default 5 s. */
  timeoutMs?: number;
  /** mTLS and/or credentials; without them the connection is anonymous (the laptop mode). */
  access?: NatsAccess;
  /** How values are written and read (signed and verified in a sidecar); plain validated JSON by default. */
  codec?: RecordCodec;
}

const BUCKET_PATTERN = /^[-\w]+$/;
/**
 * JetStream API requests of the registry (the probe's STREAM.INFO, a watch's consumer) give up after
 * this: a healthy cluster answers in milliseconds, and in a failover a request that went to a node
 * that just died, or to a leader not elected yet, is better sent again than waited on for 5 s.
 */
const API_TIMEOUT_MS = 2000;
/** While JetStream counts as down, the probe asks this often, so recovery is seen within a second or so. */
const OUTAGE_PROBE_MS = 1000;

export async function openNatsBackend(options: NatsBackendOptions): Promise<RegistryBackend> {
  const { ttlMs, signal } = options;
  const bucket = options.bucket ?? 'agentmesh';
  const timeoutMs = options.timeoutMs ?? 5000;
  const where = [options.servers].flat().join(', ');
  if (!BUCKET_PATTERN.test(bucket)) throw new MeshError('CONFIG_INVALID', `registry.bucket: '${bucket}' is not a valid KV bucket name (letters, digits, '-' and '_')`);
  throwIfAborted(signal, 'opening the NATS registry');
  const access = await natsAccessOptions(options.servers, options.access);

  let nc: NatsConnection;
  try {
    nc = await abortable(connect({
      ...access, name: options.name ?? 'agentmesh', timeout: timeoutMs,
      maxReconnectAttempts: -1, reconnectTimeWait: 1000, pingInterval: 5000,
      // Without it every request (KV put, dedup claim) builds two Errors up front for their stacks.
      noAsyncTraces: true,
    }), signal, 'connecting to NATS', (late) => { void late.close(); });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new MeshError('REGISTRY_UNAVAILABLE', `cannot connect to NATS at ${where} (registry.nats): ${errorMessage(err)}`, { cause: err });
  }
  const backend = new NatsBackend(nc, bucket, ttlMs, timeoutMs, options.name ?? 'agentmesh', options.codec ?? recordCodec(), options.access?.replicas ?? 1);
  try {
    await abortable(backend.ensureBucket(), signal, 'opening the NATS registry bucket');
  } catch (err) {
    await backend.close();
    if (signal?.aborted || err instanceof MeshError) throw err;
    throw new MeshError('REGISTRY_UNAVAILABLE', `cannot open KV bucket '${bucket}' on ${where} (is JetStream enabled?): ${errorMessage(err)}`, { cause: err });
  }
  backend.start();
  return backend;
}

class NatsBackend implements RegistryBackend {
  readonly kind = 'nats';
  readonly #nc: NatsConnection;
  readonly #bucket: string;
  readonly #ttlMs: number;
  readonly #timeoutMs: number;
  /** The connection name, which diagnostics carry so a process with several registries can tell them apart. */
  readonly #name: string;
  readonly #codec: RecordCodec;
  #kv: KV | undefined;
  #closed = false;
  #connected = true;
  /** Counts reconnects and disconnects, so a recovery overtaken by a newer one gives up. */
  #recovery = 0;
  readonly #closing = new AbortController();
  readonly #listeners = new Set<(connected: boolean, since?: number) => void>();
  readonly #replicas: number;
  #probing = false;
  /** Connected but JetStream does not answer, or its stream leader has no quorum (set and cleared by #probeJetStream). */
  #jetStreamDown = false;
  /** When a probe last found the bucket's stream leader with a quorum: an outage found later began after it. */
  #healthyAt = Date.now();
  readonly #watches = new Set<NatsWatch>();

  constructor(nc: NatsConnection, bucket: string, ttlMs: number, timeoutMs: number, name: string, codec: RecordCodec, replicas: number) {
    this.#codec = codec;
    this.#replicas = replicas;
    this.#nc = nc;
    this.#name = name;
    this.#bucket = bucket;
    this.#ttlMs = ttlMs;
    this.#timeoutMs = timeoutMs;
  }

  /** Creates the bucket (max age = TTL), or binds to it when it exists (its settings then stay). */
  async ensureBucket(): Promise<KV> {
    this.#kv = await openBucket(this.#nc, this.#bucket, this.#ttlMs, 1, this.#replicas, Math.min(this.#timeoutMs, API_TIMEOUT_MS));
    return this.#kv;
  }

  /** Follows the connection's status, and JetStream's answers for the bucket, from now on. */
  start(): void {
    // Every ttl/4: a quorum loss is seen within PEER_SILENT_MS + ttl/4, before a record heartbeated
    // ttl/3 earlier ages out in a reader's view (the outage is then dated back to when it began).
    // While JetStream counts as down, every OUTAGE_PROBE_MS.
    const every = Math.max(OUTAGE_PROBE_MS, Math.floor(this.#ttlMs / 4));
    let probedAt = Date.now();
    const probe = setInterval(() => {
      if (!this.#jetStreamDown && Date.now() - probedAt < every - OUTAGE_PROBE_MS / 2) return;
      probedAt = Date.now();
      void this.#probeJetStream();
    }, OUTAGE_PROBE_MS);
    probe.unref();
    this.#closing.signal.addEventListener('abort', () => clearInterval(probe), { once: true });
    void (async () => {
      for await (const s of this.#nc.status()) {
        if (s.type === 'disconnect') {
          this.#recovery++; // cancels a recovery still under way
          publish({ type: 'disconnect', backend: 'nats', server: s.server, connection: this.#name });
          this.#setConnected(false);
        } else if (s.type === 'reconnect') {
          publish({ type: 'reconnect', backend: 'nats', server: s.server, connection: this.#name });
          void this.#recover();
        }
      }
    })().catch(() => undefined);
    void this.#nc.closed().then(() => { if (!this.#closed) this.#setConnected(false); });
  }

  connected(): boolean {
    return this.#connected && !this.#nc.isClosed();
  }

  onConnectionChange(listener: (connected: boolean, since?: number) => void): () => void {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  }

  async put(record: RegistryRecord, { signal }: { signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(signal, 'registry put');
    const value = await this.#codec.encode(record);
    // A put no stream leader acks fails within a heartbeat interval, so the announcer's retry can land it on the next leader.
    await this.#bucketHandle().put(recordKey(record), value, { timeout: Math.min(this.#timeoutMs, Math.max(1000, Math.floor(this.#ttlMs / 6))) });
    // A write committed: the bucket is there and its stream has a quorum, whatever a probe or a
    // reconnect's bucket check still waits for (nats-server 2.9 may answer STREAM.INFO seconds later).
    if (!this.#connected && !this.#closed && !this.#nc.isClosed()) this.#available('a registry write committed');
  }

  async delete(key: string, { signal }: { signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(signal, 'registry delete');
    await this.#bucketHandle().delete(key);
  }

  async watch(onChange: (change: RegistryChange) => void, { signal, onInvalid }: WatchOptions): Promise<void> {
    throwIfAborted(signal, 'registry watch');
    const local = new AbortController();
    const watchSignal = AbortSignal.any([signal, local.signal, this.#closing.signal]);
    const watch = new NatsWatch(
      { bucket: () => this.#kv, ensureBucket: () => this.ensureBucket(), isClosed: () => this.#closed, syncTimeoutMs: this.#timeoutMs, decode: this.#codec.decode },
      onChange, { signal: watchSignal, ...(onInvalid ? { onInvalid } : {}) });
    this.#watches.add(watch);
    watchSignal.addEventListener('abort', () => this.#watches.delete(watch), { once: true });
    try {
      await watch.synced;
    } catch (err) {
      local.abort();
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    this.#listeners.clear();
    await this.#nc.close().catch(() => undefined);
  }

  #bucketHandle(): KV {
    if (!this.#kv) throw new MeshError('REGISTRY_UNAVAILABLE', `KV bucket '${this.#bucket}' is not open`);
    return this.#kv;
  }

  #setConnected(value: boolean, since?: number): void {
    if (value === this.#connected) return;
    this.#connected = value;
    for (const listener of this.#listeners) listener(value, since);
  }

  /**
   * While connected: does the bucket's stream leader answer (STREAM.INFO), and has it heard from a
   * majority of its replicas lately? A cluster that lost its quorum keeps the connection up but commits
   * no write: at first its old leader still answers (until it steps down, 10–20 s later), then nobody
   * does. The registry then counts as unreachable (writes fail, the view's records stop ageing, from
   * when the outage began) until a leader with a quorum answers again.
   */
  async #probeJetStream(): Promise<void> {
    const kv = this.#kv;
    if (this.#probing || this.#closed || !kv || this.#nc.isClosed() || (!this.#connected && !this.#jetStreamDown)) return;
    this.#probing = true;
    try {
      // A replica answers too once the leader is gone, but with no leader named.
      const { cluster, state } = (await kv.status()).streamInfo;
      const lost = cluster?.leader ? quorumLoss(cluster) : undefined;
      if (cluster !== undefined && !cluster.leader) this.#jetStreamUnavailable(`stream KV_${this.#bucket} has no leader`, this.#healthyAt);
      else if (lost) this.#jetStreamUnavailable(`stream KV_${this.#bucket}: ${lost.reason}`, Date.now() - lost.sinceMs);
      else {
        this.#healthyAt = Date.now();
        for (const watch of this.#watches) watch.checkProgress(state.last_seq, state.messages);
        if (this.#jetStreamDown && !this.#closed) this.#available('JetStream answers again');
      }
    } catch (err) {
      if (jetStreamNotReady(err)) this.#jetStreamUnavailable(errorMessage(err), this.#healthyAt);
    } finally {
      this.#probing = false;
    }
  }

  /** JetStream takes writes again: the registry counts as reachable, watches restart from a fresh snapshot. */
  #available(reason: string): void {
    if (this.#jetStreamDown) {
      this.#jetStreamDown = false;
      publish({ type: 'jetstream-available', backend: 'nats', connection: this.#name });
    }
    this.#recovery++; // a reconnect's recovery still under way has nothing left to do
    this.#healthyAt = Date.now();
    this.#setConnected(true);
    for (const watch of this.#watches) watch.restart(reason);
  }

  /** `since`: when the outage began, as far as the probe can tell. */
  #jetStreamUnavailable(error: string, since: number): void {
    if (this.#jetStreamDown || !this.#connected || this.#closed) return;
    this.#jetStreamDown = true;
    publish({ type: 'jetstream-unavailable', backend: 'nats', connection: this.#name, error });
    this.#setConnected(false, since);
  }

  /** After a reconnect: the bucket first (the server may have lost it), then listeners and watches. */
  async #recover(): Promise<void> {
    const attempt = ++this.#recovery;
    for (let failures = 0; !this.#closed && attempt === this.#recovery; failures++) {
      try {
        await this.ensureBucket();
        break;
      } catch (err) {
        publish({ type: 'watch-restart', backend: 'nats', reason: `bucket not ready after reconnect: ${errorMessage(err)}` });
        await pause(Math.min(5000, 100 * 2 ** failures), this.#closing.signal).done;
      }
    }
    if (this.#closed || attempt !== this.#recovery) return;
    this.#setConnected(true);
    for (const watch of this.#watches) watch.restart('reconnected');
  }
}
