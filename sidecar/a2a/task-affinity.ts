// Task affinity: which instance of an agent owns which A2A task, so GetTask, CancelTask,
// SubscribeToTask, push-config calls and follow-up messages reach it. Learned from the first chunk of
// each response (the task id an agent hands out); kept in memory and written through to a store that
// outlives this sidecar (NATS KV, or the embedded registry's directory), so a restarted sidecar finds it.
import type { KeyValueStore } from '../../registry/index.ts';

const MAX_TASKS = 50_000;
export const AFFINITY_TTL_MS = 60 * 60_000;
/** How long a lookup in the store may delay a call before it goes ahead without affinity. */
const LOOKUP_TIMEOUT_MS = 250;

export class TaskAffinity {
  readonly #owners = new Map<string, { instance: string; at: number }>();
  readonly #store: KeyValueStore | undefined;
  readonly #onError: (err: unknown) => void;
  readonly #onOk: () => void;

  /** `onError`/`onOk`: each store failure and each store success (to log a failing store once per outage). */
  constructor(store?: KeyValueStore, onError: (err: unknown) => void = () => undefined, onOk: () => void = () => undefined) {
    this.#store = store;
    this.#onError = onError;
    this.#onOk = onOk;
  }

  remember(agent: string, taskId: string, instance: string): void {
    const key = `${agent}/${taskId}`;
    const known = this.#owners.get(key);
    this.#owners.delete(key);
    this.#owners.set(key, { instance, at: Date.now() });
    if (this.#owners.size > MAX_TASKS) this.#owners.delete(this.#owners.keys().next().value ?? '');
    if (known?.instance !== instance) this.#store?.put(key, instance).then(this.#onOk, this.#onError);
  }

  async ownerOf(agent: string, taskId: string | undefined): Promise<string | undefined> {
    if (!taskId) return undefined;
    const key = `${agent}/${taskId}`;
    const entry = this.#owners.get(key);
    if (entry && Date.now() - entry.at <= AFFINITY_TTL_MS) return entry.instance;
    if (!this.#store) return undefined;
    const stored = await Promise.race([
      this.#store.get(key).then((value) => { this.#onOk(); return value; }, (err: unknown) => { this.#onError(err); return undefined; }),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), LOOKUP_TIMEOUT_MS).unref()),
    ]);
    if (stored) this.#owners.set(key, { instance: stored, at: Date.now() });
    return stored;
  }

  async close(): Promise<void> {
    await this.#store?.close();
  }
}

const TASK_KEY = Buffer.from('"task');
const TASK_ID = /"task"\s*:\s*\{\s*"id"\s*:\s*"([^"\\]{1,200})"|"taskId"\s*:\s*"([^"\\]{1,200})"/;

/** The task id in the start of a JSON-RPC, REST or SSE response body, if there is one. */
export function sniffTaskId(chunk: Buffer): string | undefined {
  const head = chunk.subarray(0, 64 * 1024);
  // Both forms start with "task: most answers (a message) have neither, and are not decoded to a string at all.
  if (head.indexOf(TASK_KEY) === -1) return undefined;
  const m = TASK_ID.exec(head.toString('utf8'));
  return m?.[1] ?? m?.[2] ?? undefined;
}
