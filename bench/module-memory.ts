// `npm run bench -- --memory`: first what each part of a sidecar adds to a process, in the order a
// sidecar loads them, in one fresh `node --expose-gc` process running the compiled build (dist/) with the
// young generation held as a sidecar holds it (marginal figures after collecting garbage: V8 heap in use,
// and RSS, minus the line before); then the RSS of real sidecar processes (every feature on, and every
// feature off) idle, under c=32 load (peak, VmHWM) and idle again after it, checked against 60 MB idle
// and 90 MB under load.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { closedLoop } from './load.ts';
import { clientOf, clientsFor, closeClients } from './phases.ts';
import { memory, resetPeak } from './proc.ts';
import { startOtlpSink } from './otlp-sink.ts';
import { LAYOUTS, startWorld, type Variant } from './world.ts';

const ROOT = new URL('..', import.meta.url).pathname;

/** Loaded in this order; later lines only pay for what earlier ones did not already load. The last two load only when a sidecar uses them. */
const STEPS: [string, string?][] = [
  ['node:http'], ['node:https'], ['node:crypto'], ['opossum'], ['p-retry'],
  ['yaml'], ['zod'], ['jose'], ['pino'], ['prom-client'],
  ['@nats-io/transport-node'], ['@nats-io/kv'],
  [`${ROOT}dist/sidecar/transport/undici.js`],
  [`${ROOT}dist/registry/index.js`],
  [`${ROOT}dist/sidecar/sidecar.js`],
  [`${ROOT}dist/sidecar/observe/tracer.js`, 'the tracer and OTLP exporter, with tracing on only'],
  ['@modelcontextprotocol/sdk/client/index.js', 'MCP SDK client, for stdio MCP servers only'],
];

const CHILD = `
const now = () => { globalThis.gc(); globalThis.gc(); const m = process.memoryUsage(); return [m.rss, m.heapUsed]; };
const steps = JSON.parse(process.argv[1]);
const out = [['node (bare)', ...now()]];
for (const [step, label] of steps) { await import(step); out.push([label ? \`\${step} (\${label})\` : step, ...now()]); }
process.stdout.write(JSON.stringify(out));
`;

/** Idle, loaded (peak) and after-load RSS of each sidecar of the agentmesh pairs, next to the no-logic pairs. */
async function sidecarMemory(log: (line: string) => void, loadMs: number): Promise<boolean> {
  const sink = await startOtlpSink();
  const world = await startWorld({ layout: LAYOUTS.none ?? { name: 'none' }, features: ['all', 'none'], otlpEndpoint: sink.url });
  const clients = clientsFor(world);
  const measured: Variant[] = ['reference', 'undici', 'agentmesh', 'agentmesh-off'];
  const procs = measured.flatMap((v) => (world.targets[v]?.procs ?? []).map((p) => ({ ...p, variant: v })));
  let ok = true;
  try {
    await delay(2000); // start-up garbage settles; an idle sidecar only heartbeats
    const idle = new Map(procs.map((p) => [p.name, memory(p.pid)?.rssMb ?? Number.NaN]));
    for (const p of procs) resetPeak(p.pid);
    for (const v of measured) {
      const c = clientOf(clients, v);
      const r = await closedLoop(() => c.a2a.sendMessage(c.target.a2aPath), 32, loadMs, 0);
      if (r.errors > 0) throw new Error(`load via ${v} failed: ${r.firstError}`);
    }
    const peak = new Map(procs.map((p) => [p.name, memory(p.pid)?.peakMb ?? Number.NaN]));
    await delay(2000);
    log(`\nRSS per proxy process (MB): idle after start, peak under c=32 for ${loadMs / 1000} s, then idle 2 s later:`);
    for (const p of procs) {
      const after = memory(p.pid)?.rssMb ?? Number.NaN;
      const i = idle.get(p.name) ?? Number.NaN;
      const pk = peak.get(p.name) ?? Number.NaN;
      const sidecar = p.variant.startsWith('agentmesh');
      const verdict = sidecar ? `  ${i <= 60 ? 'MET' : 'MISSED'} ≤ 60 idle, ${pk <= 90 ? 'MET' : 'MISSED'} ≤ 90 loaded` : '';
      if (sidecar && (i > 60 || pk > 90)) ok = false;
      log(`  ${p.name.padEnd(18)} idle ${i.toFixed(1).padStart(6)}  peak ${pk.toFixed(1).padStart(6)}  after ${after.toFixed(1).padStart(6)}${verdict}`);
    }
  } finally {
    await closeClients(clients);
    await world.close();
    await sink.close();
  }
  return ok;
}

export async function moduleMemory(log: (line: string) => void, options: { quick: boolean }): Promise<number> {
  if (!existsSync(`${ROOT}dist/sidecar/sidecar.js`)) {
    log('dist/ is missing: run npm run build first');
    return 1;
  }
  // --max-semi-space-size=4: the young generation a sidecar holds (sidecar/young-generation.ts), so the
  // first large import does not show V8 growing it.
  const run = spawnSync(process.execPath, ['--expose-gc', '--max-semi-space-size=4', '--input-type=module', '-e', CHILD, JSON.stringify(STEPS)], { cwd: ROOT, encoding: 'utf8' });
  if (run.status !== 0) {
    log(`the measuring process failed: ${run.stderr}`);
    return 1;
  }
  const rows = JSON.parse(run.stdout) as [string, number, number][];
  log('What a sidecar process pays per part (MB, marginal, after GC, in load order): V8 heap in use, RSS');
  let last: [number, number] | undefined;
  const mb = (n: number) => `${n >= 0 ? '+' : ''}${(n / 1e6).toFixed(1)}`.padStart(6);
  for (const [name, rss, heap] of rows) {
    const label = name.replace(ROOT, '');
    log(last
      ? `  heap ${mb(heap - last[1])}  rss ${mb(rss - last[0])}  ${label}  (${(heap / 1e6).toFixed(1)} / ${(rss / 1e6).toFixed(1)} in all)`
      : `  heap ${(heap / 1e6).toFixed(1).padStart(6)}  rss ${(rss / 1e6).toFixed(1).padStart(6)}  ${label}`);
    last = [rss, heap];
  }
  await sidecarMemory(log, options.quick ? 3000 : 8000);
  return 0;
}
