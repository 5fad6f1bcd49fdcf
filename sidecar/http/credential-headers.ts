// No credential crosses a hop (DESIGN "Trust model"): the request headers never copied to the next hop,
// the built-in credential names plus config `hop.dropHeaders`, as one set built once at start-up.
import { MESH_HEADERS } from '../../sdk/mesh-headers.ts';

/** Credentials a caller may hand its own sidecar that must never reach another agent. */
export const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization', 'x-api-key'] as const;

/**
 * The default set: credentials (no token passthrough) and every mesh-owned header (the sidecar sets
 * those itself, so a copy from outside is never trusted).
 */
export const NEVER_FORWARD: ReadonlySet<string> = new Set<string>([...CREDENTIAL_HEADERS, ...MESH_HEADERS]);

/** NEVER_FORWARD plus the configured names (lowercased, as node:http reports header names). */
export function neverForward(configured: readonly string[]): ReadonlySet<string> {
  if (configured.length === 0) return NEVER_FORWARD;
  return new Set([...NEVER_FORWARD, ...configured.map((name) => name.toLowerCase())]);
}
