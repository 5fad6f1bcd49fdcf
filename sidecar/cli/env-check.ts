// Misspelled AGENTMESH_* variables: every AGENTMESH_ name in the environment that no config key or
// command reads, with the closest known name. The sidecar warns about them at start-up.
import { CONFIG_KEYS, envName } from '../config.ts';
import { closest } from '../suggest.ts';

/** Variables read outside CONFIG_KEYS: the config file, the SDK's and CLI's sidecar URLs, the demo. */
const OTHER_VARIABLES = ['AGENTMESH_CONFIG', 'AGENTMESH_URL', 'AGENTMESH_CA_DIR', 'AGENTMESH_ADMIN_URL', 'AGENTMESH_DEMO_REGISTRY'];

export function unknownVariables(env: Record<string, string | undefined>): { name: string; suggestion: string | undefined }[] {
  const known = new Set([...CONFIG_KEYS.map(envName), ...OTHER_VARIABLES]);
  const out: { name: string; suggestion: string | undefined }[] = [];
  for (const name of Object.keys(env)) {
    if (!name.startsWith('AGENTMESH_') || known.has(name)) continue;
    out.push({ name, suggestion: closest(name, known) });
  }
  return out;
}
