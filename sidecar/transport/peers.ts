// Connection pools to other sidecars' inbound listeners: one undici Pool per (endpoint, SPIFFE ID),
// keep-alive, mutual TLS with our workload certificate, and the peer pinned to the identity its
// registry record claims. All pools share one TLS context (certificate, key and bundle parsed once), so
// a new connection allocates only its own session.
import { createSecureContext, type SecureContext } from 'node:tls';
import { Pool } from './undici.ts';
import { clientConnectOptions, type Identity } from '../identity/index.ts';

export class PeerPools {
  readonly #identity: Identity;
  readonly #pools = new Map<string, Pool>();
  #context: SecureContext | undefined;

  constructor(identity: Identity) {
    this.#identity = identity;
  }

  /** The pool for a peer endpoint whose certificate must carry `peerId`. */
  get(endpoint: string, peerId: string): Pool {
    const key = `${endpoint} ${peerId}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = new Pool(endpoint, {
        connect: { ...clientConnectOptions(this.#identity, peerId), secureContext: this.#secureContext() },
        connections: 64,
        keepAliveTimeout: 30_000,
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** Open pools, for /api/state. */
  get size(): number {
    return this.#pools.size;
  }

  /** Drops pools for endpoints no longer in the registry (in-flight requests finish first). */
  retain(live: Set<string>): void {
    for (const [key, pool] of this.#pools) {
      if (!live.has(key)) {
        this.#pools.delete(key);
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
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map((p) => p.close()));
  }

  destroy(): void {
    for (const pool of this.#pools.values()) void pool.destroy().catch(() => undefined);
    this.#pools.clear();
  }
}
