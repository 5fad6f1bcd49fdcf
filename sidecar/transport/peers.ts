// Connection pools to other sidecars' inbound listeners: one undici Pool per (endpoint, SPIFFE ID),
// keep-alive, mutual TLS with our workload certificate, and the peer pinned to the identity its
// registry record claims.
import { Pool } from './undici.ts';
import { clientConnectOptions, type Identity } from '../identity/index.ts';

export class PeerPools {
  readonly #identity: Identity;
  readonly #pools = new Map<string, Pool>();

  constructor(identity: Identity) {
    this.#identity = identity;
  }

  /** The pool for a peer endpoint whose certificate must carry `peerId`. */
  get(endpoint: string, peerId: string): Pool {
    const key = `${endpoint} ${peerId}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      pool = new Pool(endpoint, {
        connect: clientConnectOptions(this.#identity, peerId),
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
