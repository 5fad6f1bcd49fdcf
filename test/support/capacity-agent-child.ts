// A fixed-capacity agent in a process of its own (test/fixtures/agents.ts capacityExecutor), so its
// timing does not share an event loop with a test's load generator. Test-only.
// Usage: node --import tsx test/support/capacity-agent-child.ts '{"name":"busy","concurrency":2,"serviceMs":200}'
// Prints the agent's URL on stdout; SIGTERM closes it.
import { serveAgent } from '../../sdk/index.ts';
import { capacityExecutor } from '../fixtures/agents.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as { name: string; concurrency: number; serviceMs: number };
const agent = await serveAgent({ name: options.name, executor: capacityExecutor(options) });
process.once('SIGTERM', () => { void agent.close().finally(() => process.exit(0)); });
process.stdout.write(`${agent.url}\n`);
