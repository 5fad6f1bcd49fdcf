// Where a sidecar gets its policy and how it follows changes: `policy.file` (reloaded when the file
// changes), else the registry's policy store (NATS KV `{bucket}-policy`, or the embedded directory).
// A version that does not validate is logged and counted; the last good one stays in force.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { MeshError } from '../../sdk/errors.ts';
import { openPolicyStore, watchFile, type NatsAccess, type PolicyStore, type StoredPolicy } from '../../registry/index.ts';
import type { Logger } from '../log.ts';
import { CompiledPolicy } from './policy-engine.ts';
import type { PolicyGate } from './policy-gate.ts';
import { parsePolicy } from './policy-schema.ts';

export interface PolicySourceOptions {
  /** policy.file */
  file: string | undefined;
  nats: { nats: string | string[]; natsAccess: NatsAccess } | undefined;
  dir: string;
  bucket: string;
  name: string;
  gate: PolicyGate;
  log: Logger;
  /** How often the store or file is checked besides its change notifications (tests shorten it). */
  pollMs?: number;
}

export interface PolicySource {
  close(): Promise<void>;
}

/** Loads the policy in force now (before the listeners accept calls), then follows changes. */
export async function startPolicySource(options: PolicySourceOptions): Promise<PolicySource> {
  return options.file !== undefined ? fileSource(options, options.file) : storeSource(options);
}

async function fileSource(options: PolicySourceOptions, path: string): Promise<PolicySource> {
  const { gate, log } = options;
  const read = async (): Promise<{ text: string; digest: string }> => {
    const text = await readFile(path, 'utf8');
    return { text, digest: createHash('sha256').update(text).digest('hex') };
  };
  let first: { text: string; digest: string };
  try {
    first = await read();
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `policy.file: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  let version = 1;
  // An invalid file at start-up is a misconfiguration: the sidecar does not start.
  gate.install(new CompiledPolicy(parsePolicy(first.text, `policy.file ${path}`), version), { source: `file ${path}` });
  logInForce(gate, log);
  let digest = first.digest;
  const stop = watchFile(path, async () => {
    const current = await read();
    return { key: current.digest, value: current };
  }, (current) => {
    if (current.digest === digest) return;
    digest = current.digest;
    try {
      gate.install(new CompiledPolicy(parsePolicy(current.text, `policy.file ${path}`), version + 1), { source: `file ${path}` });
      version++;
      logInForce(gate, log);
    } catch (err) {
      rejected(gate, log, err);
    }
  }, (err) => rejected(gate, log, err), options.pollMs ?? 1000);
  return { close: async () => stop() };
}

async function storeSource(options: PolicySourceOptions): Promise<PolicySource> {
  const { gate, log } = options;
  const store: PolicyStore = await openPolicyStore({
    bucket: options.bucket, name: `${options.name}-policy`, ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    ...(options.nats ? { nats: options.nats.nats, access: options.nats.natsAccess } : { dir: options.dir }),
  });
  const apply = (stored: StoredPolicy): void => {
    if (gate.policy && stored.version <= gate.policy.version) return;
    try {
      gate.install(new CompiledPolicy(parsePolicy(stored.text, `version ${stored.version} in ${store.where}`), stored.version), { source: store.where, appliedAt: stored.appliedAt });
      logInForce(gate, log);
    } catch (err) {
      // No good version yet: fail closed rather than open (a broken policy must not mean "allow all").
      if (!gate.policy) gate.install(denyAll(stored.version), { source: `${store.where} (version ${stored.version} is invalid: denying every call)`, appliedAt: stored.appliedAt });
      rejected(gate, log, err);
    }
  };
  try {
    const current = await store.get();
    if (current) apply(current);
  } catch (err) {
    await store.close();
    throw err;
  }
  if (!gate.policy) log.warn({ policy: store.where }, 'no mesh policy: every caller with a mesh certificate may call every agent, method and tool (apply one with `agentmesh policy apply`)');
  store.watch(apply, (err) => rejected(gate, log, err));
  return { close: () => store.close() };
}

function denyAll(version: number): CompiledPolicy {
  return new CompiledPolicy(parsePolicy('default: deny', 'deny-all'), version);
}

function logInForce(gate: PolicyGate, log: Logger): void {
  const { lastError: _, ...status } = gate.status();
  log.info({ policy: status }, `policy version ${status.version ?? '-'} in force (${status.mode}, default ${status.default}, ${status.rules} rules)`);
}

function rejected(gate: PolicyGate, log: Logger, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  gate.failed(message);
  log.error({ err: message, inForce: gate.status().version }, 'policy not applied: the last good version stays in force');
}
