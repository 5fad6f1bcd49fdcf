// `node --import tsx bench/node-options-ab.ts [--rounds=8] [--slice=2000] [--features=all|none] [NAME=OPTIONS ...]`:
// agentmesh sidecar pairs that differ only in the options given to node, started side by side against one
// light upstream, loaded in turn at c=32 in interleaved rounds (so machine noise hits all alike). Prints,
// per pair: RSS idle (3 s after start), peak (VmHWM) and after the load; the pair's CPU per request; and
// garbage collection per 1,000 requests (pause time and count, from bench/gc-totals.mjs). Without NAME=OPTIONS
// it compares V8's default young generation (`--max-semi-space-size=16`) with the sidecar's own hold.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startNatsServer } from '../test/support/nats-server.ts';
import { startSidecarProcess, type SidecarProcess } from '../test/support/sidecar-process.ts';
import { createTestPki } from '../test/support/certs.ts';
import { waitFor } from '../test/support/wait.ts';
import type { AgentProcessInfo } from './agent-process.ts';
import { builtOrSource, startChild } from './child.ts';
import type { LightUpstreamInfo } from './light-upstream.ts';
import { HttpClient, closedLoop } from './load.ts';
import { startOtlpSink } from './otlp-sink.ts';
import { writeFiftyRulePolicy } from './policy-fifty.ts';
import { cpuSeconds, memory, resetPeak } from './proc.ts';

interface GcTotals { scavengeMs: number; scavenges: number; fullMs: number; fulls: number }
interface Pair { name: string; a: SidecarProcess; b: SidecarProcess; client: HttpClient; cpu: number; requests: number; idle: string; gc: GcTotals }

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const rounds = Number(option('rounds', '8'));
const sliceMs = Number(option('slice', '2000'));
const features = option('features', 'all');
const named = args.filter((a) => !a.startsWith('--')).map((a) => {
  const eq = a.indexOf('=');
  if (eq <= 0) throw new Error(`expected NAME=OPTIONS, got '${a}'`);
  return { name: a.slice(0, eq), options: a.slice(eq + 1).split(' ').filter(Boolean) };
});
const variants = named.length > 0 ? named : [{ name: 'v8-default', options: ['--max-semi-space-size=16'] }, { name: 'held', options: [] }];
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isFinite(sliceMs) || sliceMs < 100) throw new Error('--rounds must be ≥ 1 and --slice ≥ 100 (ms)');
if (features !== 'all' && features !== 'none') throw new Error(`--features=${features}: all or none`);

const GC_TOTALS = new URL('./gc-totals.mjs', import.meta.url).pathname;
const sum = (x: GcTotals, y: GcTotals): GcTotals => ({ scavengeMs: x.scavengeMs + y.scavengeMs, scavenges: x.scavenges + y.scavenges, fullMs: x.fullMs + y.fullMs, fulls: x.fulls + y.fulls });
const minus = (x: GcTotals, y: GcTotals): GcTotals => ({ scavengeMs: x.scavengeMs - y.scavengeMs, scavenges: x.scavenges - y.scavenges, fullMs: x.fullMs - y.fullMs, fulls: x.fulls - y.fulls });

async function gcTotals(sidecar: SidecarProcess): Promise<GcTotals> {
  const count = (sidecar.output().match(/GCTOTALS /g) ?? []).length;
  sidecar.process.kill('SIGUSR2');
  await waitFor('GC totals', () => (sidecar.output().match(/GCTOTALS /g) ?? []).length > count, 5000);
  return JSON.parse([...sidecar.output().matchAll(/GCTOTALS (.*)/g)].pop()?.[1] ?? '{}') as GcTotals;
}

const cleanup: (() => PromiseLike<unknown>)[] = [];
try {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-ab-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const pki = await createTestPki({ trustDomain: 'bench.test' });
  cleanup.push(() => pki.close());
  const nats = await startNatsServer();
  cleanup.push(() => nats[Symbol.asyncDispose]());
  const sink = await startOtlpSink();
  cleanup.push(() => sink.close());
  const agent = await startChild<AgentProcessInfo>(new URL('./agent-process.ts', import.meta.url), {});
  cleanup.push(() => agent.stop());
  const light = await startChild<LightUpstreamInfo>(builtOrSource(new URL('./light-upstream.ts', import.meta.url)), { agentUrl: agent.info.agentUrl });
  cleanup.push(() => light.stop());
  const featureConfig = features === 'all'
    ? { policy: { file: writeFiftyRulePolicy(dir, 'bench.test') }, audit: { enabled: true }, telemetry: { enabled: true, endpoint: sink.url, sampling: 1 } }
    : { audit: { enabled: false }, telemetry: { enabled: false } };
  const base = { registry: { nats: nats.url, bucket: `ab${process.pid}`, ttl: 15_000 }, log: { level: 'warn' }, shutdown: { drainTimeout: '2s' }, ...featureConfig };
  const pairs: Pair[] = [];
  for (const v of variants) {
    const nodeArgs = ['--import', GC_TOTALS, ...v.options];
    const [b, a] = await Promise.all([
      startSidecarProcess({ ...base, identity: await pki.issue(`spiffe://bench.test/agent/echo-${v.name}`), agent: { url: light.info.url, name: `echo-${v.name}` }, mcp: { servers: [{ name: `mcp-${v.name}`, url: agent.info.mcpUrl }] } }, { nodeArgs }),
      startSidecarProcess({ ...base, identity: await pki.issue(`spiffe://bench.test/agent/caller-${v.name}`) }, { nodeArgs }),
    ]);
    cleanup.push(() => Promise.allSettled([a.stop(), b.stop()]));
    const client = new HttpClient(a.outbound);
    cleanup.push(() => client.close());
    pairs.push({ name: v.name, a, b, client, cpu: 0, requests: 0, idle: '', gc: { scavengeMs: 0, scavenges: 0, fullMs: 0, fulls: 0 } });
  }
  for (const p of pairs) {
    await waitFor(`caller-${p.name} sees echo-${p.name}`, async () => ((await (await fetch(`${p.a.outbound}/registry/agents?name=echo-${p.name}`)).json()) as { agents: unknown[] }).agents.length === 1, 20_000);
  }
  await delay(3000); // start-up garbage settles
  const pids = (p: Pair) => [p.a.process.pid ?? -1, p.b.process.pid ?? -1];
  const mb = (pid: number, key: 'rssMb' | 'peakMb') => (memory(pid)?.[key] ?? Number.NaN).toFixed(1);
  for (const p of pairs) {
    p.idle = `idle A ${mb(pids(p)[0] ?? -1, 'rssMb')} B ${mb(pids(p)[1] ?? -1, 'rssMb')}`;
    for (const pid of pids(p)) resetPeak(pid);
    await closedLoop(() => p.client.sendMessage(`/a2a/echo-${p.name}`), 32, 1000, 0); // warm-up
    p.gc = sum(await gcTotals(p.a), await gcTotals(p.b));
  }
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < pairs.length; k++) {
      const p = pairs[(r + k) % pairs.length] as Pair;
      const before = pids(p).reduce((s, pid) => s + (cpuSeconds(pid) ?? 0), 0);
      const res = await closedLoop(() => p.client.sendMessage(`/a2a/echo-${p.name}`), 32, sliceMs, 0);
      p.cpu += pids(p).reduce((s, pid) => s + (cpuSeconds(pid) ?? 0), 0) - before;
      p.requests += res.handled;
      if (res.errors > 0) process.stdout.write(`${p.name}: ${res.errors} failed requests (${res.firstError ?? ''})\n`);
    }
  }
  process.stdout.write(`c=32, ${rounds} rounds of ${sliceMs} ms per pair, features ${features}; RSS in MB, CPU and GC for both sidecars of a pair:\n`);
  for (const p of pairs) {
    const gc = minus(sum(await gcTotals(p.a), await gcTotals(p.b)), p.gc);
    const per1000 = (x: number) => (x * 1000 / p.requests).toFixed(1);
    process.stdout.write(`  ${p.name.padEnd(12)} ${p.idle}  peak A ${mb(pids(p)[0] ?? -1, 'peakMb')} B ${mb(pids(p)[1] ?? -1, 'peakMb')}  after A ${mb(pids(p)[0] ?? -1, 'rssMb')} B ${mb(pids(p)[1] ?? -1, 'rssMb')}`
      + `  CPU/req ${(p.cpu * 1e6 / p.requests).toFixed(0)} µs (${p.requests} req)  per 1,000 req: scavenges ${per1000(gc.scavenges)} (${per1000(gc.scavengeMs)} ms), full GCs ${per1000(gc.fulls)} (${per1000(gc.fullMs)} ms)\n`);
  }
} finally {
  for (const step of cleanup.reverse()) await Promise.resolve(step()).catch(() => undefined);
}
