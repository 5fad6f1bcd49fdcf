// `agentmesh check`'s look at NATS: can this sidecar's access (servers, TLS, credentials) connect, is
// it authorised, and does the registry bucket exist. Reports, never throws for a failed probe.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { errorMessage } from './diagnostics.ts';
import type { NatsAccess } from './nats-access.ts';
import { natsAccessOptions } from './nats-connect.ts';

export interface NatsProbe {
  reachable: boolean;
  authorised: boolean;
  /** 'ok' with the values it holds, 'missing', or why it could not be read; undefined when not connected. */
  bucket: { state: 'ok'; values: number } | { state: 'missing' | 'unreadable'; error: string } | undefined;
  /** Why the connection failed. */
  error?: string;
}

export async function probeNats(options: { servers: string | readonly string[]; access?: NatsAccess; bucket: string; timeoutMs?: number }): Promise<NatsProbe> {
  let nc: NatsConnection;
  try {
    const access = await natsAccessOptions(options.servers, options.access);
    nc = await connect({ ...access, name: 'agentmesh-check', timeout: options.timeoutMs ?? 3000, maxReconnectAttempts: 0 });
  } catch (err) {
    const error = errorMessage(err);
    const denied = /authori[sz]ation|authentication|permissions? violation/i.test(error);
    return { reachable: denied, authorised: false, bucket: undefined, error };
  }
  try {
    const kv = await new Kvm(nc).open(options.bucket, { bindOnly: true });
    const status = await kv.status();
    return { reachable: true, authorised: true, bucket: { state: 'ok', values: status.values } };
  } catch (err) {
    const error = errorMessage(err);
    return { reachable: true, authorised: true, bucket: { state: /not found/i.test(error) ? 'missing' : 'unreadable', error } };
  } finally {
    await nc.close().catch(() => undefined);
  }
}
