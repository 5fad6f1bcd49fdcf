// The agent command test/run.test.ts gives `agentmesh run`: an echo agent (test/fixtures/agents.ts) on
// 127.0.0.1:PORT named NAME that writes { pid, meshUrl: AGENTMESH_URL } to INFO once it listens.
// SIGTERM closes it (exit 0); SIGUSR2 makes it exit with code 3. Test-only.
import { renameSync, writeFileSync } from 'node:fs';
import { serveAgent } from '../../sdk/index.ts';
import { echoExecutor } from '../fixtures/agents.ts';

const [port, name, info] = process.argv.slice(2);
if (!port || !name || !info) throw new Error('usage: run-agent-child.ts PORT NAME INFO-FILE');
const agent = await serveAgent({ name, host: '127.0.0.1', port: Number(port), executor: echoExecutor() });
process.once('SIGTERM', () => { void agent.close().finally(() => process.exit(0)); });
process.once('SIGUSR2', () => process.exit(3));
writeFileSync(`${info}.tmp`, JSON.stringify({ pid: process.pid, meshUrl: process.env.AGENTMESH_URL }));
renameSync(`${info}.tmp`, info); // into place at once: a reader never sees half a file
