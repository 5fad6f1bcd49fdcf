// Binding to a KV bucket: create it (max age = TTL) when missing and this identity may, else bind to
// the one the mesh admin made (`agentmesh nats init`). Permission refusals become errors that say so;
// a JetStream still electing its leaders is waited for. Loaded only with the NATS client.
import { PermissionViolationError, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { MeshError } from '../sdk/errors.ts';
import { whenJetStreamReady } from './jetstream-ready.ts';

/**
 * Creates `bucket` (`history` values per key, `replicas` copies) or binds to it when it exists (its settings then stay as they
 * are). Kvm.create looks at the stream first and creates it only when missing, so binding needs no
 * create permission. `apiTimeoutMs`: how long the handle's JetStream API requests (stream info,
 * consumers for watches) wait for an answer; the client's default is 5 s.
 */
export async function openBucket(nc: NatsConnection, bucket: string, ttlMs: number, history = 1, replicas = 1, apiTimeoutMs?: number): Promise<KV> {
  const kvm = new Kvm(apiTimeoutMs === undefined ? nc : jetstream(nc, { timeout: apiTimeoutMs }));
  try {
    return await whenJetStreamReady(`KV bucket '${bucket}'`, () => kvm.create(bucket, { history, ttl: ttlMs, replicas }));
  } catch (err) {
    const denied = permissionViolation(err);
    if (!denied) throw err;
    if (/\.STREAM\.CREATE\./.test(denied.subject)) {
      throw new MeshError('REGISTRY_UNAVAILABLE',
        `KV bucket '${bucket}' does not exist and this NATS user may not create it (${denied.message}); `
        + `the mesh admin creates it with 'agentmesh nats init'`, { cause: err });
    }
    throw new MeshError('REGISTRY_UNAVAILABLE',
      `this NATS user may not use KV bucket '${bucket}' (${denied.message}); `
      + `check registry.bucket against the server's permissions ('agentmesh nats config --bucket')`, { cause: err });
  }
}

/** The NATS permission error in an error or its causes. */
export function permissionViolation(err: unknown): PermissionViolationError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof PermissionViolationError) return e;
  }
  return undefined;
}
