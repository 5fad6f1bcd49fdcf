// Tool definition pins: the hash each MCP tool's definition had when it was first seen or approved, kept
// in the KV bucket `{bucket}-tools` (no expiry) or, without NATS, `{registry dir}/{bucket}-tools/pins.json`.
// Values are validated on read: a pin is an authority, a corrupt one counts as absent.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { NatsAccess } from './nats-access.ts';
import { safeKey } from './key-value-store.ts';

export const ToolPinSchema = z.strictObject({
  server: z.string().min(1).max(64),
  tool: z.string().min(1).max(256),
  /** sha256:<hex> of the definition's canonical JSON. */
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  /** The SPIFFE ID that announced the pinned definition. */
  identity: z.string().max(2048),
  /** first-use: pinned when first seen; approved: by `agentmesh tools approve`. */
  how: z.enum(['first-use', 'approved']),
  at: z.string(),
});
export type ToolPin = z.infer<typeof ToolPinSchema>;

export interface ToolPinStore {
  get(server: string, tool: string): Promise<ToolPin | undefined>;
  /** Stores a pin only if there is none yet; false when one exists (another sidecar pinned first). */
  create(pin: ToolPin): Promise<boolean>;
  /** Stores a pin, replacing any (approval). */
  put(pin: ToolPin): Promise<void>;
  list(): Promise<ToolPin[]>;
  close(): Promise<void>;
}

export interface ToolPinStoreOptions {
  bucket: string;
  nats?: string | string[] | undefined;
  access?: NatsAccess;
  /** Without NATS: the directory the file `{bucket}-tools.json` lives in. */
  dir?: string;
  name?: string;
}

function keyOf(server: string, tool: string): string {
  return safeKey(`${server}.${tool}`);
}

function parsePin(text: string | undefined): ToolPin | undefined {
  if (text === undefined) return undefined;
  try {
    const result = ToolPinSchema.safeParse(JSON.parse(text));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}

export async function openToolPinStore(options: ToolPinStoreOptions): Promise<ToolPinStore> {
  const bucket = `${options.bucket}-tools`;
  if (options.nats) {
    const [{ connect }, { openBucket }, { natsAccessOptions }] = await Promise.all([
      import('@nats-io/transport-node'), import('./nats-bucket.ts'), import('./nats-connect.ts')]);
    const access = await natsAccessOptions(options.nats, options.access);
    const nc = await connect({ ...access, name: options.name ?? 'agentmesh-tools', maxReconnectAttempts: -1, timeout: 5000 });
    const kv = await openBucket(nc, bucket, 0).catch(async (err: unknown) => { await nc.close(); throw err; });
    return {
      async get(server, tool) {
        const entry = await kv.get(keyOf(server, tool));
        return entry && entry.operation === 'PUT' ? parsePin(entry.string()) : undefined;
      },
      async create(pin) {
        try {
          await kv.create(keyOf(pin.server, pin.tool), JSON.stringify(pin));
          return true;
        } catch {
          return false;
        }
      },
      async put(pin) { await kv.put(keyOf(pin.server, pin.tool), JSON.stringify(pin)); },
      async list() {
        const pins: ToolPin[] = [];
        for await (const key of await kv.keys()) {
          const entry = await kv.get(key);
          const pin = entry && entry.operation === 'PUT' ? parsePin(entry.string()) : undefined;
          if (pin) pins.push(pin);
        }
        return pins;
      },
      async close() { await nc.drain().catch(() => nc.close()); },
    };
  }
  // A directory of its own: the embedded registry reads every file at the top of its directory as a record.
  const dir = join(options.dir ?? '.', bucket);
  const file = join(dir, 'pins.json');
  const load = async (): Promise<Record<string, unknown>> => {
    try {
      const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as Record<string, unknown> : {};
    } catch {
      return {};
    }
  };
  const save = async (all: Record<string, unknown>): Promise<void> => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.${randomUUID()}.tmp`);
    await writeFile(tmp, JSON.stringify(all, null, 1), { mode: 0o600 });
    await rename(tmp, file);
  };
  // One writer at a time in this process (read-modify-write of one file).
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };
  return {
    async get(server, tool) { return parsePin(JSON.stringify((await load())[keyOf(server, tool)])); },
    create: (pin) => serial(async () => {
      const all = await load();
      if (parsePin(JSON.stringify(all[keyOf(pin.server, pin.tool)]))) return false;
      all[keyOf(pin.server, pin.tool)] = pin;
      await save(all);
      return true;
    }),
    put: (pin) => serial(async () => {
      const all = await load();
      all[keyOf(pin.server, pin.tool)] = pin;
      await save(all);
    }),
    async list() {
      return Object.values(await load()).flatMap((v) => parsePin(JSON.stringify(v)) ?? []);
    },
    async close() { /* nothing held open */ },
  };
}
