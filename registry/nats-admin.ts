// The mesh admin's NATS step (`agentmesh nats init`): creates the KV buckets that sidecars, which may
// not create streams under `agentmesh nats config`, then bind to. Loaded only with the NATS client.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { MeshError } from '../sdk/errors.ts';
import { errorMessage } from './diagnostics.ts';
import type { NatsAccess } from './nats-access.ts';
import { natsAccessOptions } from './nats-connect.ts';
import { whenJetStreamReady } from './jetstream-ready.ts';

export interface BucketStatus {
  bucket: string;
  /** The bucket's max age in ms (0: none), as the server reports it. */
  ttlMs: number;
  values: number;
}

/** Creates each bucket (history 1 unless given, max age = ttlMs) unless it exists; returns what the server holds. */
export async function initNatsBuckets(options: {
  servers: string | string[]; access?: NatsAccess; buckets: readonly { name: string; ttlMs: number; history?: number }[]; timeoutMs?: number;
}): Promise<BucketStatus[]> {
  const access = await natsAccessOptions(options.servers, options.access);
  const where = [access.servers ?? []].flat().join(', ');
  let nc: NatsConnection;
  try {
    nc = await connect({ ...access, name: 'agentmesh-admin', timeout: options.timeoutMs ?? 5000, maxReconnectAttempts: 0 });
  } catch (err) {
    throw new MeshError('REGISTRY_UNAVAILABLE', `cannot connect to NATS at ${where} (registry.nats): ${errorMessage(err)}`, { cause: err });
  }
  try {
    const kvm = new Kvm(nc);
    const result: BucketStatus[] = [];
    for (const { name, ttlMs, history = 1 } of options.buckets) {
      try {
        const kv = await whenJetStreamReady(`KV bucket '${name}'`, () => kvm.create(name, { history, ttl: ttlMs, replicas: options.access?.replicas ?? 1 }));
        const status = await kv.status();
        result.push({ bucket: name, ttlMs: status.ttl, values: status.values });
      } catch (err) {
        throw new MeshError('REGISTRY_UNAVAILABLE', `cannot create KV bucket '${name}' on ${where}: ${errorMessage(err)}`, { cause: err });
      }
    }
    return result;
  } finally {
    await nc.close().catch(() => undefined);
  }
}
