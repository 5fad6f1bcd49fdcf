// `agentmesh demo`: three agents (planner, researcher, writer), each its own process behind its own
// sidecar process, plus a console sidecar for the user; prints a hop-by-hop account and cleans up.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectMesh, textOf } from '../../sdk/index.ts';
import { caGrant, caInit, caIssue } from '../../sidecar/index.ts';
import { ROOT, demoScript, natsServerBinary, startDemoNats, startDemoSidecar, waitFor, type DemoProcess, type DemoSidecar } from './processes.ts';
import type { Hop, Role } from './agents.ts';

export interface DemoContext {
  out: (line: string) => void;
  env: Record<string, string | undefined>;
  signal: AbortSignal;
  /** Leave the mesh up after the task until the signal aborts (`agentmesh demo --keep`). */
  keep?: boolean;
}

const TRUST_DOMAIN = 'demo.local';
const ROLES: Role[] = ['researcher', 'writer', 'planner'];
const TOPIC = 'how a service mesh helps AI agents';

export async function runDemo(ctx: DemoContext): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-demo-'));
  const children: ChildProcess[] = [];
  const sidecars: DemoSidecar[] = [];
  let nats: DemoProcess | undefined;
  try {
    const { registry, description, server } = await chooseRegistry(ctx.env, dir);
    nats = server;
    await caInit({ trustDomain: TRUST_DOMAIN, dir: join(dir, 'ca') });
    const identity = async (id: string) => {
      const files = await caIssue({ dir: join(dir, 'ca'), id, out: join(dir, 'certs', id.split('/').pop() ?? 'x') });
      return { trustDomain: TRUST_DOMAIN, ...files };
    };
    ctx.out('agentmesh demo');
    ctx.out(`  registry  ${description}`);
    ctx.out(`  identity  mesh CA for trust domain ${TRUST_DOMAIN}; every hop is mTLS between sidecars`);
    ctx.out(`  trust     registry records are signed (JWS, each sidecar's workload key, x5c chain); readers check the chain,`);
    ctx.out(`            the signer's SPIFFE ID and its name: agent N belongs to spiffe://${TRUST_DOMAIN}/agent/N, and the MCP`);
    ctx.out(`            server name 'stats' is granted to the researcher by the CA (agentmesh ca grant)`);
    const statsGrant = await caGrant({
      dir: join(dir, 'ca'), identity: `spiffe://${TRUST_DOMAIN}/agent/researcher`, agents: [], mcp: ['stats'], out: join(dir, 'stats-grant.jwt'),
    });
    ctx.out('');
    for (const role of ROLES) {
      const agentReady = join(dir, `${role}-agent.json`);
      const sidecarReady = join(dir, `${role}-sidecar.json`);
      const child = spawn(process.execPath, [...demoScript('agent-main'), '--role', role, '--ready-file', agentReady, '--mesh-file', sidecarReady],
        { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
      children.push(child);
      const { url } = await waitFor(`the ${role} agent to listen`, () => readJson<{ url: string }>(agentReady), 20_000);
      // The researcher's sidecar also launches the demo's stdio MCP server and serves it to the mesh.
      const mcp = role === 'researcher' ? { servers: [{ name: 'stats', command: [process.execPath, ...demoScript('stats-server')], cwd: ROOT }] } : undefined;
      const files = await identity(`spiffe://${TRUST_DOMAIN}/agent/${role}`);
      const sidecar = await startDemoSidecar({ agent: { url }, registry, identity: { ...files, ...(mcp ? { grants: [statsGrant] } : {}) }, ...(mcp ? { mcp } : {}) }, sidecarReady);
      sidecars.push(sidecar);
      ctx.out(`  sidecar   ${role.padEnd(10)} spiffe://${TRUST_DOMAIN}/agent/${role.padEnd(10)} inbound ${sidecar.inbound}  (agent at ${url})`);
    }
    const consoleSidecar = await startDemoSidecar({ registry, identity: await identity(`spiffe://${TRUST_DOMAIN}/user/console`) }, join(dir, 'console-sidecar.json'));
    sidecars.push(consoleSidecar);
    ctx.out(`  sidecar   ${'console'.padEnd(10)} spiffe://${TRUST_DOMAIN}/user/console    outbound ${consoleSidecar.outbound}  (you)`);
    const mesh = connectMesh({ url: consoleSidecar.outbound });
    await waitFor('every agent and the stats MCP server to be visible in the registry', async () =>
      (await mesh.agents({}, { signal: ctx.signal })).length === ROLES.length && (await mesh.mcpServers({ signal: ctx.signal })).some((s) => s.name === 'stats'), 30_000);
    ctx.out(`  mcp       stats (stdio, launched by the researcher's sidecar) → tool ${'stats__word_count'} on every sidecar's /mcp`);
    ctx.out('');
    ctx.out(`task: "${TOPIC}" → planner`);
    ctx.out('');
    const started = performance.now();
    const result = await mesh.send('planner', TOPIC, { signal: ctx.signal });
    const totalMs = performance.now() - started;
    const code = report(ctx, result, totalMs);
    if (ctx.keep && code === 0) await keepUp(ctx, consoleSidecar);
    return code;
  } catch (err) {
    ctx.out(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    for (const s of sidecars) if (s.output().trim()) ctx.out(s.output().trim());
    return 1;
  } finally {
    await Promise.allSettled(sidecars.map((s) => s.stop()));
    await Promise.allSettled(children.map((c) => stopChild(c)));
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(ctx: DemoContext, result: unknown, totalMs: number): number {
  const task = result as { artifacts?: { parts: { content?: { $case: string; value: unknown } }[] }[]; status?: { state?: number; message?: { parts: never[] } } };
  const parts = task.artifacts?.[0]?.parts ?? [];
  const data = parts.find((p) => p.content?.$case === 'data')?.content?.value as { hops: Hop[]; plannerCaller: string } | undefined;
  const summary = parts.find((p) => p.content?.$case === 'text')?.content?.value as string | undefined;
  if (!data || !summary) {
    ctx.out(`the planner did not finish: ${textOf(task.status?.message?.parts) || 'no report'}`);
    return 1;
  }
  const line = (n: number, from: string, to: string, caller: string, detail: string) =>
    ctx.out(`hop ${n}  ${`${from} → ${to}`.padEnd(32)} ${caller ? `caller=${caller}`.padEnd(43) : ''.padEnd(43)} ${detail}`);
  line(1, 'console', 'planner', data.plannerCaller, `${totalMs.toFixed(0)} ms end to end`);
  data.hops.forEach((h, i) => {
    const stream = h.events === undefined ? '' : `${h.events} events, first after ${h.firstEventMs?.toFixed(0)} ms, `;
    line(i + 2, h.from, h.to, h.caller, `${stream}done in ${h.ms.toFixed(0)} ms (found by ${h.foundBy ?? 'name'})`);
  });
  ctx.out('(first-hop times include start-up: each sidecar\'s first call opens its mTLS connections and warms its code)');
  ctx.out('');
  ctx.out(`summary: ${summary}`);
  return 0;
}

/** Prints how to try the CLI against the running demo, then waits for Ctrl-C. */
async function keepUp(ctx: DemoContext, console: DemoSidecar): Promise<void> {
  ctx.out('');
  ctx.out('the demo stays up (--keep). In another terminal, try:');
  ctx.out(`  export AGENTMESH_URL=${console.outbound}`);
  ctx.out('  agentmesh agents                  # the agents in the registry');
  ctx.out('  agentmesh tools                   # the MCP tools every sidecar serves on /mcp');
  ctx.out('  agentmesh call writer "a haiku"   # a call through the mesh');
  ctx.out(`  agentmesh tap --admin ${console.admin}   # its calls live (also --json, --agent, --method)`);
  ctx.out('press Ctrl-C to stop the demo');
  if (ctx.signal.aborted) return;
  await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
}

async function chooseRegistry(env: DemoContext['env'], dir: string): Promise<{ registry: Record<string, unknown>; description: string; server?: DemoProcess }> {
  const forced = env.AGENTMESH_DEMO_REGISTRY;
  if (forced !== undefined && forced !== 'nats' && forced !== 'embedded') throw new Error(`AGENTMESH_DEMO_REGISTRY must be 'nats' or 'embedded', not '${forced}'`);
  if (forced !== 'embedded' && env.NATS_URL) {
    return { registry: { nats: env.NATS_URL, bucket: `demo${process.pid}`, ttl: '6s' }, description: `NATS JetStream KV at ${env.NATS_URL}` };
  }
  if (forced === 'nats' || (forced === undefined && natsServerBinary())) {
    const server = await startDemoNats(dir);
    return { registry: { nats: server.url, ttl: '6s' }, description: `NATS JetStream KV (a nats-server started for the demo at ${server.url})`, server };
  }
  return { registry: { dir: join(dir, 'registry'), ttl: '6s' }, description: `embedded (files in ${join(dir, 'registry')}; no server)` };
}

function readJson<T>(path: string): T | undefined {
  try { return JSON.parse(readFileSync(path, 'utf8')) as T; } catch { return undefined; }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}
