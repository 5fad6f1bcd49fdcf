// `node --import tsx bench/tracing-cost.ts`: the CPU one call's observation costs in a sidecar, with
// telemetry off (the default) and on at ratio 1.0 (a span per call, batched OTLP/HTTP JSON export to a
// sink in this process, its CPU included). CPU time (process.cpuUsage), so other load on the machine
// matters less than for wall-clock figures. Prints µs per call for each.
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { pino } from 'pino';
import { resolveConfig } from '../sidecar/config.ts';
import { createCallObserver, type CallObserver } from '../sidecar/observe/call-observer.ts';
import { Tap } from '../sidecar/observe/tap.ts';
import { startTracing } from '../sidecar/observe/tracing.ts';
import { RequestContext } from '../sidecar/request-context.ts';
import { startOtlpSink } from './otlp-sink.ts';

const CALLS = Number(process.argv[2] ?? 50_000);
const log = pino({ level: 'silent' });
const identity = { trustDomain: 'bench.test', cert: 'c', key: 'k', bundle: 'b' };

function request(traceparent?: string): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  req.headers = traceparent ? { traceparent } : {};
  return req;
}

/** CPU µs per call of begin + end, over `n` calls, for requests arriving with and without a traceparent. */
async function cost(observer: CallObserver, n: number, settle: () => Promise<void>): Promise<number> {
  const reqs = [request(), request('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')];
  // In chunks with a turn of the event loop between, as calls arrive in a sidecar (the span processor exports meanwhile).
  const run = async (count: number) => {
    for (let i = 0; i < count; i++) {
      if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve));
      const ctx = new RequestContext(i % 2 === 0 ? 'outbound' : 'inbound', reqs[i % 2] as IncomingMessage, log);
      observer.begin(ctx, reqs[i % 2] as IncomingMessage);
      ctx.method = 'SendMessage';
      ctx.target = { kind: 'agent', name: 'echo' };
      ctx.taskId = 'task-1';
      observer.end(ctx, 200, undefined);
    }
  };
  await run(Math.min(n, 5000));
  await settle();
  const before = process.cpuUsage();
  await run(n);
  await settle();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

const sink = await startOtlpSink();
const off = resolveConfig({ file: { identity } });
const on = resolveConfig({ file: { identity, telemetry: { enabled: true, endpoint: sink.url, sampling: 1 } } });
const idle = async () => { await new Promise((resolve) => setTimeout(resolve, 50)); };
const offObserver = createCallObserver({ tracer: await startTracing(off, {}, log), accessLog: false, log, tap: new Tap() });
const tracer = await startTracing(on, { 'service.instance.id': 'bench' }, log);
const onObserver = createCallObserver({ tracer, accessLog: false, log, tap: new Tap() });
// With tracing on, the batches of the measured calls are exported before the clock stops.
const flushed = async () => { const before = sink.exports(); await waitForExports(before); };
async function waitForExports(before: number) {
  const deadline = Date.now() + 10_000;
  while (sink.exports() === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}
const rounds: { off: number; on: number }[] = [];
for (let r = 0; r < 3; r++) rounds.push({ off: await cost(offObserver, CALLS, idle), on: await cost(onObserver, CALLS, flushed) });
await tracer?.close();
const stats = tracer?.stats();
for (const [i, r] of rounds.entries()) console.log(`round ${i + 1}: telemetry off ${r.off.toFixed(2)} µs/call, on (ratio 1.0, exported) ${r.on.toFixed(2)} µs/call, added ${(r.on - r.off).toFixed(2)} µs`);
console.log(`spans per export: at most 512; a sidecar keeps up to 2048 spans waiting, then drops them (exported ${stats?.exported}, dropped ${stats?.dropped}, ${Math.round(sink.bytes() / (stats?.exported ?? 1))} bytes each)`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
console.log(`median: off ${median(rounds.map((r) => r.off)).toFixed(2)} µs/call, on ${median(rounds.map((r) => r.on)).toFixed(2)} µs/call (${sink.exports()} exports, ${(sink.bytes() / 1e6).toFixed(1)} MB)`);
await sink.close();
