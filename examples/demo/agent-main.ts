// Runs one demo agent as its own process: `agent-main.ts --role planner|researcher|writer
// --ready-file F [--mesh-file G]`. Serves on 127.0.0.1, port 0, and writes {"url"} to F when listening.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { serveAgent } from '../../sdk/index.ts';
import { waitFor } from './processes.ts';
import { SKILLS, planner, researcher, writer, type Role } from './agents.ts';

const { values } = parseArgs({ options: { role: { type: 'string' }, 'ready-file': { type: 'string' }, 'mesh-file': { type: 'string' } } });
const role = values.role as Role;
if (!(role in SKILLS) || !values['ready-file']) {
  process.stderr.write('usage: agent-main.ts --role planner|researcher|writer --ready-file F [--mesh-file G]\n');
  process.exit(2);
}

// The planner and the writer call out through their sidecars, which starts after this agent (it reads our card at
// start-up), so the sidecar's outbound URL is read lazily from its ready file on the first call.
const meshFile = values['mesh-file'];
const meshUrl = async (): Promise<string> => waitFor('the sidecar ready file', async () => {
  if (!meshFile) throw new Error(`the ${role} needs --mesh-file`);
  try { return (JSON.parse(await readFile(meshFile, 'utf8')) as { outbound: string }).outbound; } catch { return undefined; }
});
const executor = role === 'planner' ? planner(meshUrl) : role === 'researcher' ? researcher() : writer(meshUrl);
const skill = SKILLS[role];
const server = await serveAgent({ name: role, description: skill.description, skills: [{ id: skill.id, description: skill.description, tags: [skill.id] }], executor });
const readyFile = values['ready-file'];
await writeFile(`${readyFile}.tmp`, JSON.stringify({ url: server.url }));
await rename(`${readyFile}.tmp`, readyFile);
const stop = () => { void server.close().then(() => process.exit(0)); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
