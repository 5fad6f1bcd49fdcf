// CPU per request of agentmesh builds side by side, against the undici no-logic pair, in one run: a small
// A/B harness for work on the request path (`npm run bench` measures far more and takes minutes).
// Starts the light upstream, the undici pair and one agentmesh pair (every feature off) per build root,
// then drives each in turn, rotating the order every round, with SendMessage in a closed loop and reads
// each proxy's CPU from /proc. `--features=all,none` gives each build one pair per feature set (as in
// `npm run bench -- --features=…`: all = 50-rule policy, audit, tracing at 1.0 into an OTLP sink). Usage:
//   node --import tsx bench/cpu-ab.ts [--rounds=N] [--slice-ms=MS] [--c=32 | --rate=N] [--features=none]
//     [--prof=DIR] [--strace=DIR] name=/path/to/root ...   (e.g. base=/tmp/main-build new=.)
// Each root must hold a fresh build (dist/, `npx tsc -p tsconfig.build.json`); this one is the default.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startNatsServer } from '../test/support/nats-server.ts';
import { createTestPki } from '../test/support/certs.ts';
import { waitFor } from '../test/support/wait.ts';
import type { AgentProcessInfo } from './agent-process.ts';
import { builtOrSource, startChild } from './child.ts';
import { HttpClient, closedLoop, fixedRate, type LoadResult } from './load.ts';
import type { LightUpstreamArgs, LightUpstreamInfo } from './light-upstream.ts';
import { startOtlpSink } from './otlp-sink.ts';
import { writeFiftyRulePolicy } from './policy-fifty.ts';
import { cpuSeconds, memory } from './proc.ts';
import { FEATURE_VARIANT, featureConfig, type FeatureSet } from './world.ts';
import type { ReferenceProxyArgs, ReferenceProxyInfo } from './reference-proxy.ts';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number): number => {
  const v = args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return v === undefined ? fallback : Number(v);
};
const rounds = opt('rounds', 4);
const sliceMs = opt('slice-ms', 3000);
const concurrency = opt('c', 32);
const rate = opt('rate', 0);
/** --prof=DIR: the sidecars run under --cpu-prof, profiles written to DIR when they stop. */
const profDir = args.find((a) => a.startsWith('--prof='))?.slice(7);
/** --strace=DIR: one more slice per pair (--strace-rate req/s, default 200, for 2 s) with `strace -c` on each proxy, counts written to DIR. */
const straceDir = args.find((a) => a.startsWith('--strace='))?.slice(9);
const featureSets = (args.find((a) => a.startsWith('--features='))?.slice(11) ?? 'none').split(',') as FeatureSet[];
for (const f of featureSets) if (!(f in FEATURE_VARIANT)) throw new Error(`unknown feature set ${f} (expected ${Object.keys(FEATURE_VARIANT).join(', ')})`);
const here = fileURLToPath(new URL('..', import.meta.url));
const roots = args.filter((a) => !a.startsWith('--')).map((a) => {
  const eq = a.indexOf('=');
  if (eq <= 0) throw new Error(`expected name=/path/to/root, got ${a}`);
  return { name: a.slice(0, eq), root: a.slice(eq + 1) };
});
if (roots.length === 0) roots.push({ name: 'this', root: here });
for (const r of roots) if (!existsSync(join(r.root, 'dist/sidecar/main.js'))) throw new Error(`${r.root} has no build (dist/sidecar/main.js)`);

interface Pair { name: string; origin: string; path: string; procs: { name: string; pid: number }[] }

const cleanup: (() => unknown)[] = [];
const children: ChildProcess[] = [];
try {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-ab-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const pki = await createTestPki({ trustDomain: 'bench.test' });
  cleanup.push(() => pki.close());
  const nats = await startNatsServer();
  cleanup.push(() => nats[Symbol.asyncDispose]());
  const agent = await startChild<AgentProcessInfo>(new URL('./agent-process.ts', import.meta.url), {});
  cleanup.push(() => agent.stop());
  const light = await startChild<LightUpstreamInfo>(builtOrSource(new URL('./light-upstream.ts', import.meta.url)), { agentUrl: agent.info.agentUrl } satisfies LightUpstreamArgs);
  cleanup.push(() => light.stop());
  const upstream = light.info.url;
  const pairs: Pair[] = [];

  const refScript = builtOrSource(new URL('./reference-proxy.ts', import.meta.url));
  const idRefA = await pki.issue('spiffe://bench.test/agent/ref-caller');
  const idRefB = await pki.issue('spiffe://bench.test/agent/ref-echo');
  const prof = profDir ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] } : {};
  const refIn = await startChild<ReferenceProxyInfo>(refScript, { role: 'in', upstream, tls: idRefB } satisfies ReferenceProxyArgs, prof);
  cleanup.push(() => refIn.stop());
  const refOut = await startChild<ReferenceProxyInfo>(refScript, { role: 'out-undici', upstream: refIn.info.url, tls: idRefA } satisfies ReferenceProxyArgs, prof);
  cleanup.push(() => refOut.stop());
  pairs.push({ name: 'undici', origin: refOut.info.url, path: '/a2a/jsonrpc', procs: [{ name: 'out', pid: refOut.pid }, { name: 'in', pid: refIn.pid }] });

  const sidecar = async (root: string, config: Record<string, unknown>): Promise<{ pid: number; outbound: string }> => {
    const sub = mkdtempSync(join(dir, 'sc-'));
    const readyFile = join(sub, 'ready.json');
    writeFileSync(join(sub, 'sidecar.yaml'), stringify({ listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: '127.0.0.1:0' }, log: { level: 'warn' }, ...config }));
    const child = spawn(process.execPath, [...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), join(root, 'bin/agentmesh.mjs'), 'sidecar', '--config', join(sub, 'sidecar.yaml'), '--ready-file', readyFile], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(child);
    const ready = await waitFor('sidecar ready', () => { try { return JSON.parse(readFileSync(readyFile, 'utf8')) as { outbound: string }; } catch { return undefined; } }, 30_000);
    return { pid: child.pid ?? -1, outbound: ready.outbound };
  };
  const policyFile = writeFiftyRulePolicy(dir, 'bench.test');
  const sink = featureSets.includes('all') ? await startOtlpSink() : undefined;
  if (sink) cleanup.push(() => sink.close());
  let i = 0;
  for (const r of roots) {
    for (const set of featureSets) {
      i++;
      const name = `echo-${i}`;
      const registry = { nats: nats.url, bucket: `ab${process.pid}x${i}`, ttl: 15_000 };
      const base = { registry, ...featureConfig(set, policyFile, sink?.url), shutdown: { drainTimeout: '1s' } };
      const [b, a] = await Promise.all([
        sidecar(r.root, { ...base, identity: await pki.issue(`spiffe://bench.test/agent/${name}`), agent: { url: upstream, name } }),
        sidecar(r.root, { ...base, identity: await pki.issue(`spiffe://bench.test/agent/caller-${i}`) }),
      ]);
      await waitFor(`sidecar A of ${r.name} sees ${name}`, async () => {
        const body = await (await fetch(`${a.outbound}/registry/agents?name=${name}`)).json() as { agents: unknown[] };
        return body.agents.length === 1;
      }, 20_000);
      const label = featureSets.length > 1 ? `${r.name}-${set}` : r.name;
      pairs.push({ name: label, origin: a.outbound, path: `/a2a/${name}`, procs: [{ name: 'A', pid: a.pid }, { name: 'B', pid: b.pid }] });
    }
  }

  const clients = new Map(pairs.map((p) => [p.name, new HttpClient(p.origin)]));
  cleanup.push(() => Promise.all([...clients.values()].map((c) => c.close())));
  const load = (p: Pair, ms: number): Promise<LoadResult> => {
    const c = clients.get(p.name) as HttpClient;
    return rate > 0 ? fixedRate(() => c.sendMessage(p.path), rate, ms) : closedLoop(() => c.sendMessage(p.path), concurrency, ms, 300);
  };
  const everything = new Map(pairs.map((p) => [p.name, 0]));
  for (const p of pairs) everything.set(p.name, (await load(p, 1500)).handled); // warm-up: JIT and pools
  const totals = new Map(pairs.map((p) => [p.name, { handled: 0, completed: 0, seconds: 0, errors: 0, cpu: p.procs.map(() => 0) }]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < pairs.length; k++) {
      const p = pairs[(round + k) % pairs.length] as Pair;
      const before = p.procs.map((q) => cpuSeconds(q.pid) ?? 0);
      const r = await load(p, sliceMs);
      const t = totals.get(p.name);
      if (!t) continue;
      p.procs.forEach((q, j) => { t.cpu[j] = (t.cpu[j] ?? 0) + (cpuSeconds(q.pid) ?? 0) - (before[j] ?? 0); });
      everything.set(p.name, (everything.get(p.name) ?? 0) + r.handled);
      t.handled += r.handled; t.completed += r.completed; t.seconds += r.seconds; t.errors += r.errors;
      if (r.firstError) console.error(p.name, r.firstError);
    }
  }
  if (straceDir) {
    for (const p of pairs) {
      const tracers = p.procs.map((q) => spawn('strace', ['-f', '-c', '-o', join(straceDir, `${p.name}-${q.name}.txt`), '-p', String(q.pid)], { stdio: 'ignore' }));
      await new Promise((r) => setTimeout(r, 500));
      const c = clients.get(p.name) as HttpClient;
      const r = await fixedRate(() => c.sendMessage(p.path), opt('strace-rate', 200), 2000);
      console.log(`strace ${p.name}: ${r.handled} requests`);
      for (const t of tracers) t.kill('SIGINT');
      await Promise.all(tracers.map((t) => new Promise((res) => t.once('exit', res))));
    }
  }
  if (profDir) for (const p of pairs) console.log(`${p.name}: ${everything.get(p.name)} requests in all (pids ${p.procs.map((q) => `${q.name} ${q.pid}`).join(', ')})`);
  const us = (s: number, n: number) => (s / Math.max(1, n)) * 1e6;
  const ref = totals.get('undici');
  const refPair = ref ? us(ref.cpu.reduce((a, b) => a + b, 0), ref.handled) : Number.NaN;
  console.log(`load: ${rate > 0 ? `${rate} req/s` : `c=${concurrency}`}, ${rounds} rounds of ${sliceMs} ms, features ${featureSets.join(', ')}`);
  console.log('pair            req/s   errors  out µs  in µs  pair µs  ×undici   RSS now / peak MB (out, in)');
  for (const p of pairs) {
    const t = totals.get(p.name);
    if (!t) continue;
    const pair = us(t.cpu.reduce((a, b) => a + b, 0), t.handled);
    const rss = p.procs.map((q) => memory(q.pid)).map((m) => (m ? `${m.rssMb.toFixed(0)} / ${m.peakMb.toFixed(0)}` : '?')).join(', ');
    console.log(`${p.name.padEnd(14)} ${(t.completed / t.seconds).toFixed(0).padStart(6)} ${String(t.errors).padStart(8)} ${us(t.cpu[0] ?? 0, t.handled).toFixed(0).padStart(7)} ${us(t.cpu[1] ?? 0, t.handled).toFixed(0).padStart(6)} ${pair.toFixed(0).padStart(8)} ${(pair / refPair).toFixed(2).padStart(8)}   ${rss}`);
  }
} finally {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  for (const step of cleanup.reverse()) await Promise.resolve(step()).catch(() => undefined);
}
