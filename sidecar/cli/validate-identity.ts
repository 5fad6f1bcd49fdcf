// What `agentmesh validate` adds to the schema check: the identity files exist and hold a certificate
// valid now, in identity.trustDomain, owning agent.name. The ✖ lines of `check`'s certificate part.
import type { SidecarConfig } from '../config.ts';
import { checkGrants, checkIdentity, checkNameBinding } from './check-identity.ts';
import { formatResult } from './check-result.ts';

export async function validateIdentity(config: SidecarConfig): Promise<string[]> {
  const { results, id } = await checkIdentity(config);
  if (id !== undefined && config.agent?.name !== undefined) {
    const grants = await checkGrants(config);
    results.push(...grants.results, checkNameBinding(id, config.identity.trustDomain, config.agent.name, 'agent.name', grants.registrations));
  }
  return results.filter((r) => r.status === 'fail').map(formatResult);
}
