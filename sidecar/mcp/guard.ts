// DNS-rebinding protection for the agent-facing MCP routes: the Host must be a loopback name and an
// Origin, when a browser sends one, must be a loopback origin too.
import type { IncomingMessage } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function hostname(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  const colon = hostHeader.lastIndexOf(':');
  return (colon === -1 ? hostHeader : hostHeader.slice(0, colon)).toLowerCase();
}

/** Throws FORBIDDEN unless Host (and Origin, if present) name this machine's loopback. */
export function checkLoopbackRequest(req: IncomingMessage): void {
  const host = req.headers.host;
  if (!host || !LOOPBACK.has(hostname(host))) {
    throw new MeshError('FORBIDDEN', `Host '${host ?? ''}' is not allowed: the MCP routes answer only loopback names (DNS-rebinding protection)`);
  }
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let parsed: URL | undefined;
  try { parsed = new URL(origin); } catch { parsed = undefined; }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || !LOOPBACK.has(parsed.hostname)) {
    throw new MeshError('FORBIDDEN', `Origin '${origin}' is not allowed on the MCP routes (DNS-rebinding protection)`);
  }
}
