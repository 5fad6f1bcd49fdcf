// The sidecar's side of "NATS with doors": registry.tls / registry.credentials and the current workload
// identity (read at each reconnect, so a renewed certificate is used), and registry.replicas, as the
// registry's NatsAccess.
// The NATS server's own certificate is trusted for spiffe://TD/nats as well as for its host name.
import type { NatsAccess } from '../../registry/index.ts';
import type { SidecarConfig } from '../config.ts';
import type { Identity } from '../identity/index.ts';

/** The SPIFFE ID a NATS server of trust domain `trustDomain` may present instead of a host-name certificate. */
export function natsServerId(trustDomain: string): string {
  return `spiffe://${trustDomain}/nats`;
}

/** `identity` returns the workload identity new connections should present (read at every NATS (re)connect). */
export function natsAccess(config: Pick<SidecarConfig, 'registry' | 'identity'>, identity: () => Identity): NatsAccess {
  const { registry } = config;
  return {
    ...(registry.tls ? { tls: { current: identity, serverId: natsServerId(config.identity.trustDomain) } } : {}),
    ...(registry.credentials !== undefined ? { credentials: registry.credentials } : {}),
    ...(registry.replicas > 1 ? { replicas: registry.replicas } : {}),
  };
}
