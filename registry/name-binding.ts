// Name binding (DESIGN.md "Trust model"): which identity may announce which agent or MCP server name.
// Pure. Grants come from CA-signed grant tokens carried in the record and from the mesh policy's
// `registrations` (the reader's verifier is given those; see signed-records.ts).
import type { RecordKind } from './record.ts';

/** Names granted to one identity beyond the default rule. */
export interface Registrations {
  agents: readonly string[];
  mcp: readonly string[];
}

/**
 * - `owner`: the default rule (agent N belongs to spiffe://TD/agent/N; an MCP server name to the
 *   sidecar that fronts it, unless another identity holds a grant for it, see view.ts);
 * - `granted`: a grant names it for this identity;
 * - `none`: this identity may not announce it.
 */
export type Ownership = 'owner' | 'granted' | 'none';

/** Whether `identity` may announce `name` of `kind` in `trustDomain`, given the grants it holds. */
export function nameOwnership(kind: RecordKind, name: string, identity: string, trustDomain: string, granted: readonly Registrations[] = []): Ownership {
  if (granted.some((g) => (kind === 'agent' ? g.agents : g.mcp).includes(name))) return 'granted';
  if (kind === 'mcp') return 'owner';
  return identity === `spiffe://${trustDomain}/agent/${name}` ? 'owner' : 'none';
}
