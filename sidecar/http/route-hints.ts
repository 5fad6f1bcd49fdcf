// Hints for paths that miss every route because of a common mistake: a base URL of /a2a/{agent}
// without its trailing slash loses the agent's name when a client resolves a relative path against it
// (/a2a/.well-known/agent-card.json, /a2a/message:send). Pure.

export function routeHint(path: string): string {
  if (path === '/a2a' || path === '/a2a/') return ': the agent name is missing (/a2a/{agent})';
  if (path.startsWith('/a2a/') && /^\/a2a\/(\.well-known|message:|tasks|extendedAgentCard)/.test(path)) {
    return ': the agent name is missing; a base URL /a2a/{agent} without its trailing slash loses it when paths are resolved against it (use /a2a/{agent}/)';
  }
  return '';
}
