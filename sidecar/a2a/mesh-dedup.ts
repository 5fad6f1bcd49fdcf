// The mesh-wide SendMessage dedup record (resilience.meshDedup): before the local agent runs a message,
// the receiving sidecar claims caller + agent + messageId in the KV bucket `{bucket}-dedup`
// (create-if-absent, 5 minutes). A message already claimed by any instance is refused, never run again.
import { createHash } from 'node:crypto';
import { MeshError } from '../../sdk/errors.ts';
import type { KeyValueStore } from '../../registry/index.ts';

/** As long as the local dedup window. */
export const MESH_DEDUP_TTL_MS = 5 * 60_000;

export class MeshDedup {
  readonly #store: KeyValueStore;
  readonly #instance: string;
  readonly #onError: (err: unknown) => void;

  constructor(store: KeyValueStore, instance: string, onError: (err: unknown) => void) {
    this.#store = store;
    this.#instance = instance;
    this.#onError = onError;
  }

  /**
   * Claims `key` (a dedupKey) for this instance. Throws OUTCOME_UNKNOWN naming the instance that
   * claimed it first (after `release()`, which drops the local entry). If the store cannot be reached
   * the call goes on (reported to onError): the local dedup still stops resends to this instance.
   */
  async claim(key: string, messageId: string, agent: string, release: () => void): Promise<void> {
    const hashed = `d.${createHash('sha256').update(key).digest('base64url')}`;
    let created: boolean;
    try {
      created = await this.#store.create(hashed, this.#instance);
    } catch (err) {
      this.#onError(err);
      return;
    }
    if (created) return;
    const owner = await this.#store.get(hashed).catch(() => undefined);
    // What the bucket holds is not trusted: only a plain instance name is repeated.
    const instance = owner !== undefined && /^[A-Za-z0-9._-]{1,64}$/.test(owner) ? owner : 'unknown';
    release();
    const id = messageId.length > 200 ? `${messageId.slice(0, 200)}…` : messageId;
    throw new MeshError('OUTCOME_UNKNOWN',
      `agent '${agent}': message '${id}' was already accepted by instance '${instance}'${instance === this.#instance ? ' (this one)' : ''}; ` +
      'it is not run again — look the task up before sending it again',
      { details: { messageId, instance } });
  }

  close(): Promise<void> {
    return this.#store.close();
  }
}
