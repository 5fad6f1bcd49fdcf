// The outbound listener's door: whatever reaches it acts as the local agent, so every route answers only
// requests naming a loopback Host and refuses browser requests from any other origin (DNS rebinding, CSRF)
// with 403, before anything is read or forwarded. Parsing is strict; verdicts per header value are cached.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv6 } from 'node:net';
import { MeshError } from '../../sdk/errors.ts';
import type { Handler } from './listener.ts';
import { sendError } from './respond.ts';
import { parseRoute } from './routes.ts';

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const PORT = /^\d{1,5}$/;
/** Characters no host or port may hold: userinfo, paths, queries, escapes, whitespace, brackets. */
const FORBIDDEN_CHARS = /[@/\\?#%\s[\]]/;

/** Whether `host` (a Host header or an origin's host, with an optional port) names this machine's loopback. */
export function isLoopbackHost(host: string): boolean {
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close === -1) return false;
    const rest = host.slice(close + 1);
    if (rest !== '' && !(rest.startsWith(':') && validPort(rest.slice(1)))) return false;
    return isLoopbackIPv6(host.slice(1, close));
  }
  if (host === '' || FORBIDDEN_CHARS.test(host)) return false;
  const colon = host.indexOf(':');
  if (colon !== -1 && (host.indexOf(':', colon + 1) !== -1 || !validPort(host.slice(colon + 1)))) return false;
  let name = (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1); // `localhost.` is the same fully qualified name
  if (name === 'localhost') return true;
  const octets = IPV4.exec(name);
  return octets !== null && octets[1] === '127' && octets.slice(2).every((o) => Number(o) <= 255 && (o === '0' || !o.startsWith('0')));
}

function validPort(port: string): boolean {
  return PORT.test(port) && Number(port) <= 65535;
}

function isLoopbackIPv6(address: string): boolean {
  if (!isIPv6(address) || address.includes('%')) return false;
  // Expand `::` and compare: only 0:0:0:0:0:0:0:1 (any spelling of ::1) is loopback.
  const [head = '', tail] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  if (right.some((g) => g.includes('.')) || left.some((g) => g.includes('.'))) return false;
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.length === 8 && groups.slice(0, 7).every((g) => Number.parseInt(g, 16) === 0) && Number.parseInt(groups[7] ?? '', 16) === 1;
}

/** Why a request may not use the outbound listener, or undefined when it may. */
export function outboundRefusal(headers: IncomingMessage['headers']): string | undefined {
  const host = headers.host;
  if (host === undefined) return 'a Host header is required';
  if (!isLoopbackHost(host)) return `Host '${host}' is not a loopback name (the outbound listener answers only 127.0.0.0/8, localhost and [::1])`;
  const origin = headers.origin;
  if (origin !== undefined) {
    const m = /^https?:\/\/([^/]+)$/i.exec(origin);
    if (!m?.[1] || !isLoopbackHost(m[1])) return `Origin '${origin}' is not a loopback http(s) origin (cross-origin browser requests are refused)`;
    return undefined;
  }
  // Browsers omit Origin on simple GETs (links, images); Fetch Metadata still says where they came from.
  const site = headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return `a browser request from another site (Sec-Fetch-Site: ${site}) is refused`;
  return undefined;
}

const MAX_CACHED = 256;
/** Verdicts per (Host, Origin, Sec-Fetch-Site): the same few values arrive on every request. */
const verdicts = new Map<string, string>();

/** Wraps the outbound handler: a refused request gets 403 FORBIDDEN naming why, and its body is never read. */
export function guardOutbound(handler: Handler): Handler {
  return async function guarded(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { host, origin } = req.headers;
    const site = req.headers['sec-fetch-site'];
    const key = origin === undefined && site === undefined ? host ?? '\0' : `${host ?? '\0'}\n${origin ?? ''}\n${site ?? ''}`;
    let why = verdicts.get(key);
    if (why === undefined) {
      why = outboundRefusal(req.headers) ?? '';
      if (verdicts.size >= MAX_CACHED) verdicts.delete(verdicts.keys().next().value ?? '');
      verdicts.set(key, why);
    }
    if (why === '') return handler(req, res);
    const route = parseRoute(req.url ?? '/');
    const style = route.kind === 'mcp' || (route.kind === 'a2a' && route.rest === '') ? 'jsonrpc' : 'json';
    sendError(res, new MeshError('FORBIDDEN', `${why}: whatever reaches the outbound listener acts as the local agent`), { style });
  };
}
