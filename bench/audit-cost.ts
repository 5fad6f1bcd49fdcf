// `node --import tsx bench/audit-cost.ts`: the CPU one audit record costs a sidecar (queue on the
// request path, then sealing into the hash chain and storing in batches), measured in-process with the
// real writer, with the file sink and with the JetStream sink (a real nats-server), to compare with the
// pair's CPU per request in `npm run bench`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { AuditLog } from '../sidecar/audit/audit-log.ts';
import { fileSink, natsSink, type AuditSink } from '../sidecar/audit/audit-sink.ts';
import { startNatsServer } from '../test/support/nats-server.ts';
import { CallAudit } from '../sidecar/audit/call-audit.ts';
import { createLogger } from '../sidecar/log.ts';
import { RequestContext } from '../sidecar/request-context.ts';

const N = 50_000;
const req = { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } } as unknown as IncomingMessage;
const quiet = createLogger('silent');

async function measure(name: string, sink: AuditSink): Promise<void> {
  const log = await AuditLog.open({ instance: 'bench', sink, maxPending: 100_000, batchSize: 256, flushIntervalMs: 100, retryMs: 1000 });
  const audit = new CallAudit(log);
  const oneCall = (): number => {
    const start = process.cpuUsage();
    const ctx = new RequestContext('inbound', req, quiet);
    ctx.caller = 'spiffe://mesh.local/agent/planner';
    ctx.target = { kind: 'agent', name: 'researcher' };
    ctx.method = 'SendMessage';
    ctx.taskId = 't-1';
    ctx.contextId = 'c-1';
    audit.done(ctx, req, 200);
    const used = process.cpuUsage(start);
    return used.user + used.system;
  };
  for (let i = 0; i < 5000; i++) oneCall(); // warm-up
  await log.flush();
  let onPath = 0;
  const all = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    onPath += oneCall();
    if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve)); // timers and I/O run between requests
  }
  await log.flush();
  const total = process.cpuUsage(all);
  const stats = log.stats();
  await log.close();
  console.log(`audit (${name}): ${N} records, ${stats.stored} stored; on the request path ${(onPath / N).toFixed(2)} µs/record `
    + `(context + queue, incl. cpuUsage), in all ${((total.user + total.system) / N).toFixed(2)} µs/record (seal, SHA-256, JSON, batched store)`);
}

const dir = mkdtempSync(join(tmpdir(), 'audit-cost-'));
await measure('file', await fileSink(dir, 'bench'));
rmSync(dir, { recursive: true, force: true });
const nats = await startNatsServer();
try {
  const sink = natsSink({ nats: nats.url, access: {}, bucket: 'bench', instance: 'bench', owner: 'bench', ackTimeoutMs: 5000, onError: (err) => console.error(err) });
  await measure('JetStream', sink);
} finally {
  await nats[Symbol.asyncDispose]();
}
