// What the CLI says when a lookup finds nothing: which filter matched no agent, and the closest agent
// name or skill that exists ("did you mean").
import type { Mesh } from '../../sdk/index.ts';
import { MeshError, isMeshError } from '../../sdk/errors.ts';
import { didYouMean } from '../suggest.ts';

/** The line `agents` prints for an empty answer. */
export async function noAgentsLine(mesh: Mesh, skill: string | undefined, signal: AbortSignal): Promise<string> {
  if (skill === undefined) return 'no agents registered';
  const all = await mesh.agents({}, { signal });
  const skills = new Set(all.flatMap((a) => ((a.card as { skills?: { id?: unknown; name?: unknown }[] }).skills ?? []).flatMap((s) => [s.id, s.name]).filter((v): v is string => typeof v === 'string')));
  return all.length === 0 ? `no agent has the skill '${skill}' (no agents registered)`
    : `no agent has the skill '${skill}'${didYouMean(skill, skills)} (${all.length} agent${all.length === 1 ? '' : 's'} registered: agentmesh agents)`;
}

/** AGENT_NOT_FOUND with the closest registered name, other errors unchanged. */
export async function withAgentHint(err: unknown, mesh: Mesh, agent: string, signal: AbortSignal): Promise<unknown> {
  if (!isMeshError(err) || err.code !== 'AGENT_NOT_FOUND') return err;
  const names = await mesh.agents({}, { signal }).then((list) => list.map((a) => a.name), () => []);
  const hint = didYouMean(agent, names);
  return hint ? new MeshError('AGENT_NOT_FOUND', `${err.message}${hint}`, { cause: err }) : err;
}
