// The sidecar's side of "NATS with doors": turns registry.tls / registry.credentials and the workload
// identity into the registry's NatsAccess. The NATS server's own certificate is trusted for
// spiffe://TD/nats as well as for its host name.
import type { NatsAccess } from '../../registry/index.ts';
import type { SidecarConfig } from '../config.ts';

/** The SPIFFE ID a NATS server of trust domain `trustDomain` may present instead of a host-name certificate. */
export function natsServerId(trustDomain: string): string {
  return `spiffe://${trustDomain}/nats`;
}

export function natsAccess(config: Pick<SidecarConfig, 'registry' | 'identity'>): NatsAccess {
  const { registry, identity } = config;
  return {
    ...(registry.tls ? {
      tls: { certFile: identity.cert, keyFile: identity.key, caFile: identity.bundle, serverId: natsServerId(identity.trustDomain) },
    } : {}),
    ...(registry.credentials !== undefined ? { credentials: registry.credentials } : {}),
  };
}
