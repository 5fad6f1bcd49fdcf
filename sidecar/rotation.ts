// Certificate rotation in a running sidecar: a new SVID goes to the inbound listener for new TLS
// connections (outbound pools follow in peers.ts), expiry is a metric, and the config shown is redacted.
import type { IdentitySource } from './identity/index.ts';
import { serverTlsOptions } from './identity/index.ts';
import type { Listener } from './http/listener.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { SidecarConfig } from './config.ts';

export function followRotation(deps: { identities: IdentitySource; inbound: Listener; metrics: Metrics; log: Logger }): void {
  const { identities, inbound, metrics, log } = deps;
  metrics.certExpiry(() => identities.current().notAfter);
  identities.onChange((next, previous) => {
    inbound.setSecureContext(serverTlsOptions(next));
    log.info({ id: next.id, notAfter: next.notAfter.toISOString(), previousNotAfter: previous.notAfter.toISOString() }, 'new certificate in use for new connections');
  });
}

/** The config for /api/state, without the join token. */
export function redactConfig(config: SidecarConfig): SidecarConfig {
  if (config.identity.token === undefined) return config;
  return { ...config, identity: { ...config.identity, token: '[redacted]' } };
}
