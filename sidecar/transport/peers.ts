// Connection pools to other sidecars' inbound listeners: one undici Pool per (endpoint, SPIFFE ID),
// keep-alive, mutual TLS with our workload certificate, and the peer pinned to the identity its
// registry record claims. All pools of one certificate share one TLS context (certificate, key and
// bundle parsed once); a renewed certificate starts a new generation of pools (peer-generations.ts).
import { createSecureContext, type SecureContext } from 'node:tls';
import { MeshError } from '../../sdk/errors.ts';
import { Pool } from './undici.ts';
import { clientConnectOptions, type Identity, type IdentitySource } from '../identity/index.ts';
import { retireAtExpiry } from './peer-generations.ts';

export class PeerPools {
  #identity: Identity;
  #expiresAt: number;
  #pools = new Map<string, Pool>();
  /** The same pools by endpoint, then peer ID: found per call without building the key string. */
  #index = new Map<string, Map<string, Pool>>();
  #context: SecureContext | undefined;
  readonly #retiring = new Set<Pool>();
  readonly #unsubscribe: () => void;

  /** From an identity source (pools follow its renewals), or one fixed identity. */
  constructor(source: IdentitySource | Identity) {
    this.#identity = 'current' in source ? source.current() : source;
    this.#expiresAt = this.#identity.notAfter.getTime();
    this.#unsubscribe = 'current' in source ? source.onChange((next, previous) => this.#rotate(next, previous)) : () => undefined;
  }

  /** The pool for a peer endpoint whose certificate must carry `peerId`; IDENTITY_EXPIRED once our certificate has expired. */
  get(endpoint: string, peerId: string): Pool {
    if (Date.now() >= this.#expiresAt) {
      throw new MeshError('IDENTITY_EXPIRED', `this sidecar's certificate (${this.#identity.id}) expired at ${this.#identity.notAfter.toISOString()} and was not renewed; refusing to call ${peerId}`);
    }
    let pool = this.#index.get(endpoint)?.get(peerId);
    if (!pool) {
      pool = new Pool(endpoint, {
        connect: { ...clientConnectOptions(this.#identity, peerId), secureContext: this.#secureContext() },
        // Unbounded: the peer's admission and limits.pendingPerTarget bound the calls, and one caller's open
        // streams must never hold the connections another call waits for.
        connections: null,
        keepAliveTimeout: 30_000,
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.#pools.set(PeerPools.key(endpoint, peerId), pool);
      let byPeer = this.#index.get(endpoint);
      if (!byPeer) this.#index.set(endpoint, byPeer = new Map());
      byPeer.set(peerId, pool);
    }
    return pool;
  }

  /** Open pools, for /api/state. */
  get size(): number {
    return this.#pools.size;
  }

  /** New certificate: new calls get new pools; the old ones finish what they carry and close, and are cut before the old certificate expires. */
  #rotate(next: Identity, previous: Identity): void {
    this.#identity = next;
    this.#expiresAt = next.notAfter.getTime();
    this.#context = undefined;
    const old = [...this.#pools.values()];
    this.#pools = new Map();
    this.#index = new Map();
    retireAtExpiry(old, previous.notAfter.getTime(), this.#retiring);
  }

  /** Drops pools for endpoints no longer in the registry (in-flight requests finish first). */
  retain(live: Set<string>): void {
    for (const [key, pool] of this.#pools) {
      if (!live.has(key)) {
        this.#pools.delete(key);
        // key(): the endpoint (a URL, no spaces) and the peer ID.
        const endpoint = key.slice(0, key.indexOf(' '));
        const byPeer = this.#index.get(endpoint);
        byPeer?.delete(key.slice(endpoint.length + 1));
        if (byPeer?.size === 0) this.#index.delete(endpoint);
        void pool.close().catch(() => undefined);
      }
    }
  }

  /** Made on first use: tls.connect would otherwise build one per connection from the PEM strings. */
  #secureContext(): SecureContext {
    const { keyPem, certPem, bundlePem } = this.#identity;
    return (this.#context ??= createSecureContext({ key: keyPem, cert: certPem, ca: bundlePem, minVersion: 'TLSv1.2' }));
  }

  static key(endpoint: string, peerId: string): string {
    return `${endpoint} ${peerId}`;
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    const pools = [...this.#pools.values(), ...this.#retiring];
    this.#pools.clear();
    this.#index.clear();
    this.#retiring.clear();
    await Promise.allSettled(pools.map((p) => p.close()));
  }

  destroy(): void {
    this.#unsubscribe();
    for (const pool of [...this.#pools.values(), ...this.#retiring]) void pool.destroy().catch(() => undefined);
    this.#pools.clear();
    this.#index.clear();
    this.#retiring.clear();
  }
}
