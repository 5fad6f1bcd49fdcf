// A Map with a size bound for the verifier's caches (certificate chains, grants): when full, the
// oldest entry goes, one at a time. Clearing the whole map instead would make a mesh with more
// workloads than the bound re-verify every heartbeat's chain and grants right after each clear.
export class BoundedCache<K, V> {
  readonly #max: number;
  readonly #entries = new Map<K, V>();

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number { return this.#entries.size; }
  get(key: K): V | undefined { return this.#entries.get(key); }

  set(key: K, value: V): void {
    if (!this.#entries.has(key) && this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, value);
  }

  clear(): void { this.#entries.clear(); }
}
