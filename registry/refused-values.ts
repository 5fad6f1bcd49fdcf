// Values refused only for the name binding, remembered per key (the latest, bounded) so that a new grant
// from the mesh authority (the policy's `registrations`) admits them at once instead of at their owner's
// next heartbeat. Holds raw values only; the registry re-verifies them in full before using one.
import { rejectReason, type RecordCodec } from './record-codec.ts';

const MAX_REFUSED = 1024;

export class RefusedValues {
  readonly #values = new Map<string, string>();

  /** `codec` with its refusals for the name binding remembered, and a key's memory cleared when a value is accepted. */
  wrap(codec: RecordCodec): RecordCodec {
    return {
      encode: codec.encode,
      decode: async (key, value) => {
        try {
          const sealed = await codec.decode(key, value);
          this.#values.delete(key);
          return sealed;
        } catch (err) {
          if (rejectReason(err) === 'name_not_owned') this.#remember(key, value);
          throw err;
        }
      },
    };
  }

  /** Every remembered value, forgotten (decoding one again remembers it again if it is still refused). */
  take(): [key: string, value: string][] {
    const all = [...this.#values];
    this.#values.clear();
    return all;
  }

  get size(): number {
    return this.#values.size;
  }

  #remember(key: string, value: string): void {
    this.#values.delete(key); // re-inserted last: the oldest key goes first when full
    if (this.#values.size >= MAX_REFUSED) this.#values.delete(this.#values.keys().next().value ?? '');
    this.#values.set(key, value);
  }
}
