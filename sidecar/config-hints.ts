// "Did you mean" for a misspelled key in a config file: the known keys at the issue's path (the leaf
// keys of CONFIG_KEYS and the sections they sit in), nearest first. Pure.
import { CONFIG_KEYS } from './config.ts';
import { closest } from './suggest.ts';

/** Keys that are not flags but are valid in a file. */
const FILE_ONLY = ['mcp.servers', 'hop.dropHeaders', 'agent.labels', 'resilience.policies', 'resilience.targets', 'resilience.defaults.retry', 'resilience.defaults.breaker'];

export function unknownKeyHint(issue: { code: string; path: PropertyKey[]; keys?: string[] }): string {
  if (issue.code !== 'unrecognized_keys' || !issue.keys) return '';
  const prefix = issue.path.map(String).join('.');
  const known = new Set<string>();
  for (const key of [...CONFIG_KEYS, ...FILE_ONLY]) {
    const parts = key.split('.');
    const depth = issue.path.length;
    if (parts.slice(0, depth).join('.') === prefix && parts[depth] !== undefined) known.add(parts[depth]);
  }
  const hints = issue.keys.map((k) => [k, closest(k, known)] as const).filter(([, near]) => near !== undefined);
  return hints.length === 0 ? '' : ` (did you mean ${hints.map(([k, near]) => `${near ?? ''} for ${k}`).join(', ')}?)`;
}
