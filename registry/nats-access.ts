// How a sidecar uses NATS: how it proves itself (mTLS with the workload certificate, a credentials file,
// or nothing; and the warning for "nothing") and how many replicas what it creates gets. Pure and free
// of the NATS client, so it loads eagerly.

/** mTLS to NATS with the workload certificate. */
export interface NatsTls {
  /**
   * The client certificate, its key and the CA bundle (PEM). Called at every (re)connect, so a renewed
   * or reloaded certificate is presented on the next connection.
   */
  current: () => { certPem: string; keyPem: string; bundlePem: string };
  /**
   * Accepted as the server's identity when its certificate does not match the host name:
   * a certificate whose one URI SAN is this SPIFFE ID (e.g. spiffe://TD/nats).
   */
  serverId?: string;
}

export interface NatsAccess {
  tls?: NatsTls;
  /** A NATS .creds file (user JWT + nkey seed), or a YAML/JSON file { user, password } or { token }. */
  credentials?: string;
  /** Replicas of every KV bucket and stream this client creates (registry.replicas; default 1). Binding to an existing one keeps its own. */
  replicas?: number;
}

/** The servers of a `registry.nats` value: an array, or one string of comma-separated URLs. */
export function natsServers(servers: string | readonly string[]): string[] {
  return [servers].flat().flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * A warning when the registry is reached with neither TLS client certificates nor credentials (the
 * laptop mode): anyone who reaches that NATS can overwrite, delete or purge registry records.
 * Undefined when the access is authenticated. Reused by `agentmesh check`.
 */
export function natsAccessWarning(servers: string | readonly string[], access: NatsAccess = {}): string | undefined {
  if (access.tls || access.credentials) return undefined;
  const urls = natsServers(servers);
  if (urls.length > 0 && urls.every((u) => /^[a-z]+:\/\/[^/@]+@/i.test(u))) return undefined; // user:password@ in every URL
  return `NATS at ${urls.join(', ')} is used without TLS client certificates or credentials (registry.tls, registry.credentials): `
    + 'anyone who can reach it can overwrite, delete or purge registry records; fine on a laptop, not in a shared network';
}
