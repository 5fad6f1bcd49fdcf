// An echo agent (test/fixtures/agents.ts) in a process of its own, so a test can run it on another test
// host (`ip netns exec NS node --import tsx test/support/echo-agent-child.ts NAME`). Test-only.
// Prints the agent's URL on stdout; SIGTERM closes it.
import { serveAgent } from '../../sdk/index.ts';
import { echoExecutor } from '../fixtures/agents.ts';

const agent = await serveAgent({ name: process.argv[2] ?? 'echo', executor: echoExecutor() });
process.once('SIGTERM', () => { void agent.close().finally(() => process.exit(0)); });
process.stdout.write(`${agent.url}\n`);
