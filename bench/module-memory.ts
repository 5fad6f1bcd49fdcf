// `npm run bench -- --memory`: what each part of a sidecar adds to a process's RSS, in the order a
// sidecar loads them, in one fresh `node --expose-gc` process running the compiled build (dist/).
// Marginal figures: each line is the RSS after importing that module and collecting garbage, minus
// the line before. It explains the idle RSS the main run reports; it is not a target check.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const ROOT = new URL('..', import.meta.url).pathname;

/** Loaded in this order; later lines only pay for what earlier ones did not already load. */
const STEPS = [
  'node:http', 'node:https', 'node:crypto', 'opossum', 'p-retry',
  'yaml', 'zod', 'pino', 'prom-client',
  '@nats-io/transport-node', '@nats-io/kv',
  `${ROOT}dist/sidecar/transport/undici.js`,
  `${ROOT}dist/sidecar/sidecar.js`,
  '@modelcontextprotocol/sdk/client/index.js',
  '@modelcontextprotocol/sdk/client/streamableHttp.js',
];

const CHILD = `
const rss = () => { globalThis.gc(); globalThis.gc(); return process.memoryUsage().rss; };
const steps = JSON.parse(process.argv[1]);
const out = [['node (bare)', rss()]];
for (const step of steps) { await import(step); out.push([step, rss()]); }
if (steps.some((s) => s.includes('streamableHttp'))) { new Headers(); out.push(["Node's own undici (global fetch/Headers, used by the MCP SDK)", rss()]); }
process.stdout.write(JSON.stringify(out));
`;

export function moduleMemory(log: (line: string) => void): number {
  if (!existsSync(`${ROOT}dist/sidecar/sidecar.js`)) {
    log('dist/ is missing: run npm run build first');
    return 1;
  }
  const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD, JSON.stringify(STEPS)], { cwd: ROOT, encoding: 'utf8' });
  if (run.status !== 0) {
    log(`the measuring process failed: ${run.stderr}`);
    return 1;
  }
  const rows = JSON.parse(run.stdout) as [string, number][];
  log('RSS a sidecar process pays per part (MB, marginal, after GC, in load order):');
  let last = 0;
  for (const [name, rss] of rows) {
    const label = name.replace(ROOT, '');
    log(`  ${(last === 0 ? rss : rss - last) / 1e6 >= 0 ? '+' : ''}${((last === 0 ? rss : rss - last) / 1e6).toFixed(1).padStart(5)}  ${label}${last === 0 ? '' : `  (${(rss / 1e6).toFixed(1)} in all)`}`);
    last = rss;
  }
  return 0;
}
