// Tool definition pins: the hash each MCP tool's definition had when it was first seen or approved, kept
// in the KV bucket `{bucket}-tools` (no expiry) or, without NATS, `{registry dir}/{bucket}-tools/pins.json`.
// Values are signed (tool-pin-seal.ts) and verified on read: a pin is an authority, one that does not
// verify — or a first-use pin that is not its key's first value — counts as absent and is reported.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { NatsAccess } from './nats-access.ts';
import { safeKey } from './key-value-store.ts';
import { pinRejectReason, pinRejection, type PinRejectReason, type PinVerifier, type VerifiedPin } from './tool-pin-seal.ts';
import { TOOL_PIN_HISTORY, type ToolPin } from './tool-pin-schema.ts';

export type { ToolPin } from './tool-pin-schema.ts';

export interface ToolPinStore {
  /** The pin of a tool that verifies, or undefined (absent, or ignored and reported through onRejected). */
  get(server: string, tool: string): Promise<VerifiedPin | undefined>;
  /** Stores a signed first-use pin only if the key never held one; false when it does (another sidecar pinned first). */
  create(pin: ToolPin, signed: string): Promise<boolean>;
  /** Stores a signed approval, replacing any pin. */
  put(pin: ToolPin, signed: string): Promise<void>;
  /** Every pin that verifies. */
  list(): Promise<VerifiedPin[]>;
  close(): Promise<void>;
}

export interface ToolPinStoreOptions {
  bucket: string;
  nats?: string | string[] | undefined;
  access?: NatsAccess;
  /** Without NATS: the directory the file `{bucket}-tools.json` lives in. */
  dir?: string;
  name?: string;
  verifier: PinVerifier;
  /** A stored pin that was ignored, and why (the sidecar counts and logs it). */
  onRejected?: (key: string, reason: PinRejectReason, message: string) => void;
}

function keyOf(server: string, tool: string): string {
  return safeKey(`${server}.${tool}`);
}

export async function openToolPinStore(options: ToolPinStoreOptions): Promise<ToolPinStore> {
  const bucket = `${options.bucket}-tools`;
  /** Verifies a stored value; `first` says whether it is the first value its key ever held. */
  const check = async (server: string, tool: string, value: string, first: () => Promise<boolean>): Promise<VerifiedPin | undefined> => {
    try {
      const verified = await options.verifier.verify(server, tool, value);
      if (verified.pin.how === 'first-use' && !await first()) {
        throw pinRejection('replaced', `the first-use pin of '${server}__${tool}' (signed by ${verified.signer}) replaced an earlier value: only an approval may do that`);
      }
      return verified;
    } catch (err) {
      options.onRejected?.(keyOf(server, tool), pinRejectReason(err), err instanceof Error ? err.message : String(err));
      return undefined;
    }
  };
  if (options.nats) {
    const [{ connect }, { openBucket }, { natsAccessOptions }] = await Promise.all([
      import('@nats-io/transport-node'), import('./nats-bucket.ts'), import('./nats-connect.ts')]);
    const access = await natsAccessOptions(options.nats, options.access);
    const nc = await connect({ ...access, name: options.name ?? 'agentmesh-tools', maxReconnectAttempts: -1, timeout: 5000 });
    const kv = await openBucket(nc, bucket, 0, TOOL_PIN_HISTORY, options.access?.replicas).catch(async (err: unknown) => { await nc.close(); throw err; });
    /** The key's history starts with this revision (a put, with no delete, purge or other value before it). */
    const isFirst = async (key: string, revision: number): Promise<boolean> => {
      const history = await kv.history({ key });
      try {
        for await (const entry of history) return entry.revision === revision && entry.operation === 'PUT';
        return false;
      } finally {
        history.stop();
      }
    };
    const read = async (server: string, tool: string, key = keyOf(server, tool)): Promise<VerifiedPin | undefined> => {
      const entry = await kv.get(key);
      if (!entry || entry.operation !== 'PUT') return undefined;
      return check(server, tool, entry.string(), () => isFirst(key, entry.revision));
    };
    return {
      get: (server, tool) => read(server, tool),
      async create(pin, signed) {
        try {
          await kv.create(keyOf(pin.server, pin.tool), signed);
          return true;
        } catch {
          return false;
        }
      },
      async put(pin, signed) { await kv.put(keyOf(pin.server, pin.tool), signed); },
      async list() {
        const pins: VerifiedPin[] = [];
        for await (const key of await kv.keys()) {
          const entry = await kv.get(key);
          if (!entry || entry.operation !== 'PUT') continue;
          const claimed = claimedPin(entry.string());
          const pin = claimed && keyOf(claimed.server, claimed.tool) === key ? await read(claimed.server, claimed.tool, key) : undefined;
          if (pin) pins.push(pin);
        }
        return pins;
      },
      async close() { await nc.drain().catch(() => nc.close()); },
    };
  }
  // A directory of its own: the embedded registry reads every file at the top of its directory as a record.
  // Whoever may write this directory is the operator of a single-host mesh: no history is kept here.
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
  const valueOf = (all: Record<string, unknown>, key: string): string | undefined => {
    const v = all[key];
    return typeof v === 'string' ? v : v === undefined ? undefined : JSON.stringify(v);
  };
  const always = async () => true;
  return {
    async get(server, tool) {
      const value = valueOf(await load(), keyOf(server, tool));
      return value === undefined ? undefined : check(server, tool, value, always);
    },
    create: (pin, signed) => serial(async () => {
      const all = await load();
      if (all[keyOf(pin.server, pin.tool)] !== undefined) return false;
      all[keyOf(pin.server, pin.tool)] = signed;
      await save(all);
      return true;
    }),
    put: (pin, signed) => serial(async () => {
      const all = await load();
      all[keyOf(pin.server, pin.tool)] = signed;
      await save(all);
    }),
    async list() {
      const all = await load();
      const pins: VerifiedPin[] = [];
      for (const key of Object.keys(all)) {
        const value = valueOf(all, key);
        const claimed = value === undefined ? undefined : claimedPin(value);
        const pin = value !== undefined && claimed && keyOf(claimed.server, claimed.tool) === key ? await check(claimed.server, claimed.tool, value, always) : undefined;
        if (pin) pins.push(pin);
      }
      return pins;
    },
    async close() { /* nothing held open */ },
  };
}

/** The server and tool a stored value says it is for (unverified: only to know what to verify it as). */
function claimedPin(value: string): { server: string; tool: string } | undefined {
  try {
    const payload: unknown = JSON.parse(Buffer.from(value.split('.')[1] ?? '', 'base64url').toString('utf8'));
    const { server, tool } = payload as { server?: unknown; tool?: unknown };
    return typeof server === 'string' && typeof tool === 'string' ? { server, tool } : undefined;
  } catch {
    return undefined;
  }
}
