// Token ids already accepted, until their tokens expire: a bounded map that forgets the oldest first.
// Used to refuse a replayed delegation token. Memory is capped; nothing here does I/O.

export class JtiCache {
  readonly #seen = new Map<string, { exp: number; key: string }>();
  readonly #max: number;

  constructor(max = 100_000) {
    this.#max = max;
  }

  /**
   * Records `jti` (valid until `exp`, epoch s) for a request identified by `key`. Returns 'new', 'same' (seen
   * before for the same request: a retry of it) or 'replayed' (seen for another request).
   */
  record(jti: string, exp: number, key: string, nowS = Date.now() / 1000): 'new' | 'same' | 'replayed' {
    const earlier = this.#seen.get(jti);
    if (earlier && earlier.exp >= nowS) return earlier.key === key ? 'same' : 'replayed';
    if (this.#seen.size >= this.#max) this.#evict(nowS);
    this.#seen.set(jti, { exp, key });
    return 'new';
  }

  get size(): number {
    return this.#seen.size;
  }

  #evict(nowS: number): void {
    for (const [jti, entry] of this.#seen) if (entry.exp < nowS) this.#seen.delete(jti);
    // Still full: drop the oldest tenth (insertion order); a token that old is near its expiry anyway.
    if (this.#seen.size >= this.#max) {
      let drop = Math.ceil(this.#max / 10);
      for (const jti of this.#seen.keys()) {
        if (drop-- <= 0) break;
        this.#seen.delete(jti);
      }
    }
  }
}
