// Path parsing shared by the outbound and inbound listeners: `/a2a/{agent}[/rest]`, `/mcp/{server}`,
// `/registry/agents`. Pure; no I/O. A malformed percent-escape is INVALID_REQUEST (400), never a crash.
import { MeshError } from '../../sdk/errors.ts';
import { NAME_PATTERN } from '../../registry/index.ts';

export type Route =
  | { kind: 'a2a'; name: string; rest: string; search: string; path: string }
  | { kind: 'mcp'; name: string | undefined; search: string; path: string }
  | { kind: 'registry-agents'; params: URLSearchParams; path: string }
  | { kind: 'registry-mcp'; path: string }
  | { kind: 'unknown'; path: string };

export function parseRoute(rawUrl: string): Route {
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const search = q === -1 ? '' : rawUrl.slice(q);
  if (path.startsWith('/a2a/')) {
    const slash = path.indexOf('/', 5);
    const name = decodeSegment(slash === -1 ? path.slice(5) : path.slice(5, slash));
    if (NAME_PATTERN.test(name)) {
      // `/a2a/{agent}/` is the same route as `/a2a/{agent}`: clients resolve the card relative to the
      // base URL, which only keeps the agent segment when it ends in a slash.
      const rest = slash === -1 || slash === path.length - 1 ? '' : path.slice(slash);
      return { kind: 'a2a', name, rest, search, path };
    }
    return { kind: 'unknown', path };
  }
  if (path === '/mcp' || path === '/mcp/') return { kind: 'mcp', name: undefined, search, path };
  if (path.startsWith('/mcp/')) {
    const name = decodeSegment(path.slice(5).replace(/\/$/, ''));
    return NAME_PATTERN.test(name) ? { kind: 'mcp', name, search, path } : { kind: 'unknown', path };
  }
  if (path === '/registry/mcp') return { kind: 'registry-mcp', path };
  if (path === '/registry/agents') return { kind: 'registry-agents', params: new URLSearchParams(search), path };
  return { kind: 'unknown', path };
}

function decodeSegment(segment: string): string {
  // Names are plain: decodeURIComponent is a runtime call (and a new string) per request for nothing.
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch (err) {
    throw new MeshError('INVALID_REQUEST', `malformed percent-escape in the request path segment '${segment.slice(0, 80)}'`, { cause: err });
  }
}

export type A2aRoute = Extract<Route, { kind: 'a2a' }>;
export type McpRoute = Extract<Route, { kind: 'mcp' }>;
