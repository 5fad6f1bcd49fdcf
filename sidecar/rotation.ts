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

/**
 * The config for /api/state: without the join token, the values of stdio MCP servers' environment (API
 * keys go there), and URLs (the agent, MCP servers, the OTLP endpoint, NATS servers) without user info or
 * query, where a credential could have been written.
 */
export function redactConfig(config: SidecarConfig): SidecarConfig {
  const nats = config.registry.nats;
  return {
    ...config,
    ...(config.agent === undefined ? {} : { agent: { ...config.agent, url: redactUrl(config.agent.url) } }),
    mcp: {
      ...config.mcp,
      servers: config.mcp.servers.map((s) => ('url' in s
        ? { ...s, url: redactUrl(s.url) }
        : { ...s, env: Object.fromEntries(Object.keys(s.env).map((name) => [name, '[redacted]'])) })),
    },
    identity: config.identity.token === undefined ? config.identity : { ...config.identity, token: '[redacted]' },
    telemetry: { ...config.telemetry, endpoint: redactUrl(config.telemetry.endpoint) },
    registry: nats === undefined ? config.registry : { ...config.registry, nats: Array.isArray(nats) ? nats.map(redactUrl) : redactUrl(nats as string) },
  };
}

/** A URL as it may be logged or shown: user info and query replaced by "[redacted]". */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '' && parsed.search === '') return url;
    if (parsed.username !== '' || parsed.password !== '') { parsed.username = 'redacted'; parsed.password = ''; }
    if (parsed.search !== '') parsed.search = '?redacted';
    return parsed.toString();
  } catch {
    return url.includes('@') || url.includes('?') ? '[redacted]' : url;
  }
}
