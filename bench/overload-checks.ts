// A focused micro-benchmark of the per-request checks issue 11 adds on the normal path: the SSE guard's
// scan (per chunk, against a plain pass-through), the fault test, and the round trip a mesh-wide
// SendMessage dedup record (create-if-absent in a JetStream KV bucket) would add. Run:
//   node --import tsx bench/overload-checks.ts
import { performance } from 'node:perf_hooks';
import { connect } from '@nats-io/transport-node';
import { openBucket } from '../registry/nats-bucket.ts';
import { a2aFault } from '../sidecar/a2a/instance-fault.ts';
import { A2A_METHODS } from '../sidecar/a2a/methods.ts';
import { SseGuard } from '../sidecar/transport/sse-guard.ts';
import { startNatsServer } from '../test/support/nats-server.ts';

function nsPer(n: number, fn: () => void): number {
  for (let i = 0; i < Math.min(n, 100_000); i++) fn();
  const started = performance.now();
  for (let i = 0; i < n; i++) fn();
  return ((performance.now() - started) * 1e6) / n;
}

// A2A streaming events as agents send them: one ~400-byte JSON-RPC event per chunk, and 8 per 3 KiB chunk.
const event = Buffer.from(`data: ${JSON.stringify({ jsonrpc: '2.0', id: 1, result: { statusUpdate: { taskId: 't'.repeat(36), contextId: 'c'.repeat(36), status: { state: 'TASK_STATE_WORKING', message: { parts: [{ text: 'x'.repeat(200) }] } } } } })}\n\n`);
const eight = Buffer.concat(Array.from({ length: 8 }, () => event));
const pass = (b: Buffer) => b.length > 0;
const noop = () => undefined;
const guard = new SseGuard(1024 * 1024);
const rows: [string, string][] = [];
rows.push(['pass-through only, 1 event/chunk', `${nsPer(2_000_000, () => pass(event)).toFixed(1)} ns/chunk`]);
rows.push([`SseGuard.feed, 1 event/chunk (${event.length} B)`, `${nsPer(2_000_000, () => guard.feed(event, pass, noop)).toFixed(1)} ns/chunk`]);
rows.push([`SseGuard.feed, 8 events/chunk (${eight.length} B)`, `${nsPer(1_000_000, () => guard.feed(eight, pass, noop)).toFixed(1)} ns/chunk`]);
const head = event.subarray(0, 200);
const tail = event.subarray(200);
rows.push([`SseGuard.feed, 1 event split in 2 chunks`, `${nsPer(1_000_000, () => { guard.feed(head, pass, noop); guard.feed(tail, pass, noop); }).toFixed(1)} ns/event`]);
const send = A2A_METHODS.find((m) => m.name === 'SendMessage');
rows.push(['a2aFault(...) + test of a 200', `${nsPer(5_000_000, () => a2aFault(false, send)(200, {})).toFixed(1)} ns/request`]);

// The mesh-wide dedup record: one create-if-absent per SendMessage, against a real nats-server.
const nats = await startNatsServer();
const nc = await connect({ servers: nats.url });
const kv = await openBucket(nc, `bench-dedup-${process.pid}`, 5 * 60_000);
const N = 3000;
for (let i = 0; i < 200; i++) await kv.create(`warm.${i}`, 'w0');
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < N; i++) await kv.create(`m.${i}`, 'w0');
const seqMs = (performance.now() - t0) / N;
const cpu = process.cpuUsage(cpu0);
const t1 = performance.now();
await Promise.all(Array.from({ length: N }, (_, i) => kv.create(`p.${i}`, 'w0')));
const parMs = (performance.now() - t1) / N;
const dup = await kv.create('m.1', 'w1').then(() => 'created (wrong)', (err: Error) => `refused (${err.message.slice(0, 40)})`);
rows.push(['KV create, sequential', `${(seqMs * 1000).toFixed(0)} µs/create latency, ${((cpu.user + cpu.system) / N).toFixed(0)} µs CPU in the client`]);
rows.push([`KV create, ${N} at once`, `${(parMs * 1000).toFixed(0)} µs/create (throughput)`]);
rows.push(['KV create of an existing key', dup]);
await nc.close();
await nats.stop();

for (const [what, figure] of rows) console.log(`${what.padEnd(44)} ${figure}`);
