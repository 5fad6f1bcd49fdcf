// The audit stream on JetStream (nats-server 2.9), real sidecar processes: records of a call load reach
// `{bucket}-audit`; with nats-server down for 30 s under load, calls are unaffected, and afterwards the
// records of that period are in the stream, in order, and verify; a message deleted from the stream is
// named by `agentmesh audit verify`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { serveAgent } from '../sdk/index.ts';
import { openAuditStream } from '../registry/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent } from './support/mesh.ts';
import { rawRequest } from './support/raw-http.ts';
import { waitFor } from './support/wait.ts';
import { runCli } from './support/sidecar-process.ts';

const OUTAGE_MS = 30_000;

async function streamRecords(url: string, bucket: string): Promise<Record<string, unknown>[]> {
  const stream = await openAuditStream({ nats: url, bucket, name: 'audit-test-reader', create: false });
  try {
    const out: Record<string, unknown>[] = [];
    for await (const r of stream.read({})) out.push(JSON.parse(r.text) as Record<string, unknown>);
    return out;
  } finally {
    await stream.close();
  }
}

test('audit records survive a 30 s NATS outage under load, in order, and verify', { timeout: 180_000 }, async (t) => {
  const mesh = await createTestMesh({ backend: 'nats', ttl: '3s' });
  const echo = await serveAgent({ name: 'echo', executor: echoExecutor() });
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-audit-nats-'));
  t.after(async () => { await mesh.close(); await echo.close(); rmSync(dir, { recursive: true, force: true }); });
  const nats = mesh.nats;
  assert.ok(nats);
  const bucket = String(mesh.registry.bucket);
  await mesh.sidecar('echo', { instance: 'echo1', agent: { url: echo.url }, audit: { dir: join(dir, 'echo'), flushInterval: '20ms' } });
  const caller = await mesh.sidecar('caller', { instance: 'caller1', audit: { dir: join(dir, 'caller'), flushInterval: '20ms' } });
  await waitForAgent(caller, 'echo');

  const call = async (id: string): Promise<number> => {
    const res = await rawRequest(caller.outbound, {
      method: 'POST', path: '/a2a/echo',
      headers: { host: new URL(caller.outbound).host, 'content-type': 'application/json', 'a2a-version': '1.0', 'x-agentmesh-request-id': id },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: id }] } } }),
    });
    return res.status;
  };
  const before = `before-${randomUUID()}`;
  assert.equal(await call(before), 200);
  await waitFor('the first record in the stream', async () => (await streamRecords(nats.url, bucket)).some((r) => r.requestId === before), 15_000);

  await nats.stop();
  const sent: string[] = [];
  const failures: string[] = [];
  const ends = Date.now() + OUTAGE_MS;
  // Load: four callers back to back for the whole outage.
  await Promise.all([0, 1, 2, 3].map(async (w) => {
    for (let i = 0; Date.now() < ends; i++) {
      const id = `outage-${w}-${i}-${randomUUID().slice(0, 8)}`;
      const status = await call(id);
      sent.push(id);
      if (status !== 200) failures.push(`${id}: ${status}`);
    }
  }));
  assert.deepEqual(failures, [], 'calls failed while NATS was down');
  assert.ok(sent.length > 100, `only ${sent.length} calls in ${OUTAGE_MS} ms`);
  t.diagnostic(`${sent.length} calls while NATS was down`);

  await nats.restart();
  const wanted = new Set(sent);
  // Each sidecar replays its own spool: both the calling and the receiving side's records must arrive.
  const recorded = (all: Record<string, unknown>[], instance: string) => new Set(all
    .filter((r) => r.instance === instance && typeof r.requestId === 'string' && wanted.has(r.requestId)).map((r) => r.requestId));
  const records = await waitFor('every outage record of both sidecars in the stream', async () => {
    const all = await streamRecords(nats.url, bucket);
    return recorded(all, 'caller1').size === wanted.size && recorded(all, 'echo1').size === wanted.size ? all : undefined;
  }, 60_000);
  for (const instance of ['caller1', 'echo1']) {
    const mine = records.filter((r) => r.instance === instance);
    for (let i = 1; i < mine.length; i++) assert.ok(Number(mine[i]?.seq) > Number(mine[i - 1]?.seq), `${instance} records out of order at ${i}`);
  }
  const verify = await runCli(['audit', 'verify', '--nats', nats.url, '--bucket', bucket]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /✔ caller1: \d+ records/);
  assert.match(verify.stdout, /✔ echo1: \d+ records/);

  // Remove one of caller1's messages (a batch of records) that has another after it: verify names the
  // records it carried as missing.
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(`${bucket}-audit`);
    const batches: { seq: number; first: number; last: number }[] = [];
    for (let s = info.state.first_seq; s <= info.state.last_seq; s++) {
      const msg = await jsm.streams.getMessage(`${bucket}-audit`, { seq: s }).catch(() => null);
      const records = msg ? new TextDecoder().decode(msg.data).split('\n').map((l) => JSON.parse(l) as { instance?: string; seq?: number }) : [];
      const first = records[0]?.seq;
      const last = records.at(-1)?.seq;
      if (records[0]?.instance === 'caller1' && typeof first === 'number' && typeof last === 'number') batches.push({ seq: s, first, last });
    }
    assert.ok(batches.length >= 2, `caller1's records are in ${batches.length} message(s)`);
    assert.ok(batches.some((b) => b.last > b.first), 'some message carries several records');
    const victim = batches[Math.floor((batches.length - 1) / 2)];
    assert.ok(victim);
    await jsm.streams.deleteMessage(`${bucket}-audit`, victim.seq);
    const broken = await runCli(['audit', 'verify', '--nats', nats.url, '--bucket', bucket]);
    assert.equal(broken.code, 1, broken.stdout);
    assert.match(broken.stdout, new RegExp(`✖ caller1: .*records ${victim.first}\\.\\.${victim.last} are missing`));
    assert.match(broken.stdout, /✔ echo1/);
  } finally {
    await nc.close();
  }
});
