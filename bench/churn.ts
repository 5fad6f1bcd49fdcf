// Scale, simulated: 1,000 agents and 200 MCP servers registered in NATS with churn (a leave and a join
// every 1/rate s), next to two real sidecar processes with a steady call load between them. Reports
// propagation, sidecar RSS over time and the pair's CPU per request, quiet vs churning. Not a test.
// Usage: node --import tsx bench/churn.ts [--minutes 10] [--agents 1000] [--mcp 200] [--rate 10] [--quiet-seconds 60]
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import { createRecordSigner, createRecordVerifier, openRegistry, signGrant, type Announcement, type AnnouncedRecord, type Registry } from '../registry/index.ts';
import { issueWorkload } from '../sidecar/identity/index.ts';
import { createTestPki } from '../test/support/certs.ts';
import { startNatsServer } from '../test/support/nats-server.ts';
import { ROOT, startSidecarProcess, type SidecarProcess } from '../test/support/sidecar-process.ts';
import { waitFor } from '../test/support/wait.ts';
import { cpuSeconds, machineBusySeconds, memory } from './proc.ts';
import { summarize, type Summary } from './stats.ts';

const { values: flags } = parseArgs({ options: {
  minutes: { type: 'string', default: '10' }, agents: { type: 'string', default: '1000' }, mcp: { type: 'string', default: '200' },
  rate: { type: 'string', default: '10' }, 'quiet-seconds': { type: 'string', default: '60' }, 'call-rate': { type: 'string', default: '20' },
} });
const AGENTS = Number(flags.agents);
const MCPS = Number(flags.mcp);
const RATE = Number(flags.rate);
const CHURN_MS = Number(flags.minutes) * 60_000;
const QUIET_MS = Number(flags['quiet-seconds']) * 1000;
const CALL_RATE = Number(flags['call-rate']);
const TTL_MS = 15_000;
const TD = 'churn.bench';
/** Every simulated record is signed as one identity, granted its name by the CA (as bench/registry-scale.ts). */
const SIMULATOR = `spiffe://${TD}/agent/simulator`;

function agent(name: string, i: number, grant: string): AnnouncedRecord {
  const url = `https://10.9.${Math.floor(i / 250) % 250}.${i % 250}:15443`;
  return {
    kind: 'agent', name, instance: `sim${i}`, identity: SIMULATOR, grants: [grant], endpoint: url, labels: { team: `t${i % 17}` },
    card: {
      name, description: `simulated agent ${i}`, version: '1.0.0',
      supportedInterfaces: [{ url: `${url}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' }],
      capabilities: { streaming: true }, defaultInputModes: ['text/plain'], defaultOutputModes: ['text/plain'],
      skills: [0, 1, 2].map((k) => ({ id: `skill-${(i + k) % 50}`, name: `Skill ${(i + k) % 50}`, description: 'one simulated thing', tags: [`tag-${(i + k) % 23}`] })),
    },
  };
}

function mcp(name: string, i: number, grant: string): AnnouncedRecord {
  return {
    kind: 'mcp', name, instance: `sim${i}`, identity: SIMULATOR, grants: [grant], endpoint: `https://10.8.${Math.floor(i / 250) % 250}.${i % 250}:15443`, labels: {},
    tools: [0, 1, 2, 3].map((k) => ({ name: `tool_${k}`, description: `simulated tool ${k} of ${name}`, inputSchema: { type: 'object', properties: { q: { type: 'string' } } } })),
  };
}

interface Live { name: string; kind: 'agent' | 'mcp'; handle: Announcement }

/** One A→B SendMessage through the pair; resolves with its latency in ms. */
async function call(a: SidecarProcess, n: number): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${a.outbound}/a2a/echo`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    body: JSON.stringify({ jsonrpc: '2.0', id: n, method: 'SendMessage', params: { message: { messageId: `m${n}-${Date.now()}`, role: 'ROLE_USER', parts: [{ text: 'hi' }] } } }),
  });
  const body = await res.json() as { error?: unknown };
  if (res.status !== 200 || body.error) throw new Error(`call ${n}: ${res.status} ${JSON.stringify(body.error)}`);
  return performance.now() - t0;
}

interface Phase { name: string; seconds: number; calls: number; failed: number; latencyMs: Summary; pairCpuUsPerCall: number; sidecarCpuPct: Record<string, number>; machineBusyPct: number }

/** Calls at CALL_RATE for `ms` while `during` runs; the pair's CPU over the phase divided by the calls. */
async function phase(name: string, ms: number, a: SidecarProcess, b: SidecarProcess, onTick: (elapsedMs: number) => void): Promise<Phase> {
  const pids = [a.process.pid ?? 0, b.process.pid ?? 0];
  const cpu0 = pids.map((p) => cpuSeconds(p) ?? 0);
  const busy0 = machineBusySeconds();
  const t0 = performance.now();
  const lat: number[] = [];
  let failed = 0;
  let n = 0;
  while (performance.now() - t0 < ms) {
    const due = t0 + (n * 1000) / CALL_RATE;
    if (due > performance.now()) await delay(due - performance.now()); // pacing an open-loop load, not synchronisation
    try { lat.push(await call(a, n)); } catch { failed++; }
    n++;
    onTick(performance.now() - t0);
  }
  const seconds = (performance.now() - t0) / 1000;
  const used = pids.map((p, i) => (cpuSeconds(p) ?? 0) - (cpu0[i] ?? 0));
  return {
    name, seconds, calls: lat.length, failed, latencyMs: summarize(lat),
    pairCpuUsPerCall: ((used[0] ?? 0) + (used[1] ?? 0)) / Math.max(1, lat.length) * 1e6,
    sidecarCpuPct: { A: ((used[0] ?? 0) / seconds) * 100, B: ((used[1] ?? 0) / seconds) * 100 },
    machineBusyPct: ((machineBusySeconds() - busy0) / seconds / cpus().length) * 100,
  };
}

async function main(): Promise<void> {
  const nats = await startNatsServer();
  const pki = await createTestPki({ trustDomain: TD });
  const echo = spawn(process.execPath, ['--import', 'tsx', 'test/support/echo-agent-child.ts', 'echo'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const agentUrl = await new Promise<string>((resolve) => echo.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
  const registry = { nats: [nats.url], ttl: `${TTL_MS / 1000}s` };
  const [a, b] = await Promise.all([
    startSidecarProcess({ registry, identity: await pki.issue(`spiffe://${TD}/agent/caller`), audit: { enabled: false } }, { timeoutMs: 60_000 }),
    startSidecarProcess({ registry, agent: { url: agentUrl }, identity: await pki.issue(`spiffe://${TD}/agent/echo`), audit: { enabled: false } }, { timeoutMs: 60_000 }),
  ]);
  const pair = await issueWorkload({ caCertPem: pki.ca.certPem, caKeyPem: pki.ca.keyPem, id: SIMULATOR });
  const signer = createRecordSigner(() => ({ id: SIMULATOR, certPem: pair.certPem, keyPem: pair.keyPem }));
  const verifier = createRecordVerifier({ trustDomain: TD, bundle: () => pki.ca.certPem });
  const grant = (kind: 'agent' | 'mcp', name: string) => signGrant({ caKeyPem: pki.ca.keyPem, identity: SIMULATOR, agents: kind === 'agent' ? [name] : [], mcp: kind === 'mcp' ? [name] : [] });
  const record = async (kind: 'agent' | 'mcp', name: string, j: number) => (kind === 'agent' ? agent(name, j, await grant(kind, name)) : mcp(name, j, await grant(kind, name)));
  const simulator: Registry = await openRegistry({ nats: nats.url, ttlMs: TTL_MS, name: 'churn-simulator', signer });
  // The watcher verifies like a sidecar, so its propagation includes the signature check.
  const watcher: Registry = await openRegistry({ nats: nats.url, ttlMs: TTL_MS, name: 'churn-watcher', verifier });
  const rss: { t: number; A: number; B: number }[] = [];
  const result: Record<string, unknown> = { agents: AGENTS, mcp: MCPS, rate: RATE, ttlMs: TTL_MS, cpus: cpus().length };
  try {
    await waitFor('first call', async () => { await call(a, -1); return true; }, 30_000, 200);
    const live: Live[] = [];
    const t0 = performance.now();
    for (let i = 0; i < AGENTS + MCPS; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, AGENTS + MCPS - i) }, async (_, k) => {
        const j = i + k;
        const kind = j < AGENTS ? 'agent' : 'mcp';
        const name = kind === 'agent' ? `sim-${j}` : `simmcp-${j}`;
        live.push({ name, kind, handle: await simulator.announce(await record(kind, name, j)) });
      }));
    }
    await waitFor('sidecar A lists every simulated agent', async () => {
      const res = await fetch(`${a.outbound}/registry/agents?name=sim-${AGENTS - 1}`);
      return ((await res.json()) as { agents: unknown[] }).agents.length > 0;
    }, 60_000, 100);
    result.populateSeconds = (performance.now() - t0) / 1000;
    const sample = (t: number) => rss.push({ t, A: memory(a.process.pid ?? 0)?.rssMb ?? Number.NaN, B: memory(b.process.pid ?? 0)?.rssMb ?? Number.NaN });
    let nextSample = 0;
    const sampler = (base: number) => (elapsed: number) => { if (base + elapsed >= nextSample) { sample((base + elapsed) / 1000); nextSample += 15_000; } };
    const quiet = await phase('quiet', QUIET_MS, a, b, sampler(0));

    // Churn: every 1/RATE s one random record leaves and a new one joins; the watcher times both.
    const joins: number[] = [];
    const leaves: number[] = [];
    const sidecarSeen: number[] = [];
    const pendingJoin = new Map<string, { kind: 'agent' | 'mcp'; at: number }>();
    const pendingLeave = new Map<string, { kind: 'agent' | 'mcp'; at: number }>();
    const count = (name: string, kind: 'agent' | 'mcp') => (kind === 'agent' ? watcher.agentInstances(name) : watcher.mcpInstances(name)).length;
    const off = watcher.onChange(() => {
      const now = performance.now();
      for (const [name, p] of pendingJoin) if (count(name, p.kind) > 0) { joins.push(now - p.at); pendingJoin.delete(name); }
      for (const [name, p] of pendingLeave) if (count(name, p.kind) === 0) { leaves.push(now - p.at); pendingLeave.delete(name); }
    });
    let stop = false;
    let serial = AGENTS + MCPS;
    let churnErrors = 0;
    const polls: Promise<void>[] = [];
    const churn = (async () => {
      const start = performance.now();
      for (let k = 0; !stop; k++) {
        const due = start + (k * 1000) / RATE;
        if (due > performance.now()) await delay(due - performance.now()); // the churn schedule
        const gone = live.splice(Math.floor(Math.random() * live.length), 1)[0];
        const kind = Math.random() < AGENTS / (AGENTS + MCPS) ? 'agent' : 'mcp';
        const j = serial++;
        const name = kind === 'agent' ? `churn-${j}` : `churnmcp-${j}`;
        try {
          const next = await record(kind, name, j); // signed before the clock starts: the CA's work is not propagation
          if (gone) { pendingLeave.set(gone.name, { kind: gone.kind, at: performance.now() }); await gone.handle.withdraw(); }
          const at = performance.now();
          pendingJoin.set(name, { kind, at });
          live.push({ name, kind, handle: await simulator.announce(next) });
          if (kind === 'agent' && k % 10 === 0) {
            polls.push(waitFor(`sidecar A lists ${name}`, async () => {
              const res = await fetch(`${a.outbound}/registry/agents?name=${name}`);
              return ((await res.json()) as { agents: unknown[] }).agents.length > 0;
            }, 30_000, 5).then(() => { sidecarSeen.push(performance.now() - at); }, () => { churnErrors++; }));
          }
        } catch { churnErrors++; }
      }
    })();
    const churning = await phase('churn', CHURN_MS, a, b, sampler(QUIET_MS));
    stop = true;
    await churn;
    await Promise.allSettled(polls);
    off();
    const churnRss = rss.filter((s) => s.t * 1000 >= QUIET_MS);
    const slope = (key: 'A' | 'B') => {
      const xs = churnRss.map((s) => s.t / 60);
      const ys = churnRss.map((s) => s[key]);
      const mx = xs.reduce((x, y) => x + y, 0) / xs.length;
      const my = ys.reduce((x, y) => x + y, 0) / ys.length;
      return xs.reduce((acc, x, i) => acc + (x - mx) * ((ys[i] ?? 0) - my), 0) / xs.reduce((acc, x) => acc + (x - mx) ** 2, 0);
    };
    Object.assign(result, {
      phases: [quiet, churning], churnEvents: { joins: joins.length, leaves: leaves.length, errors: churnErrors, unseenJoins: pendingJoin.size, unseenLeaves: pendingLeave.size },
      propagationMs: { joinWatcher: summarize(joins), leaveWatcher: summarize(leaves), joinSidecarA: summarize(sidecarSeen) },
      rssMb: { samples: rss, slopeMbPerMin: { A: slope('A'), B: slope('B') } },
      loadavg: loadavg(),
    });
  } finally {
    process.stdout.write(`${JSON.stringify(result, null, 1)}\n`);
    await Promise.allSettled([watcher.close(), Promise.race([simulator.close(), delay(15_000)])]);
    await Promise.allSettled([a.stop(), b.stop()]);
    echo.kill('SIGTERM');
    await nats[Symbol.asyncDispose]();
    await pki.close();
  }
}

await main();
