// Bounded inspection with real processes: a holder of a mesh certificate sends 20 bodies of 4 MiB of
// deeply nested JSON straight to an agent's inbound listener. That sidecar's memory stays bounded, its
// other callers are not slowed, and a 10,000-deep body gets a JSON-RPC error without reaching the agent.
// @serial: run alone (scripts/run-tests.mjs), its figures are timings and memory of whole processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { Agent, fetch as undiciFetch } from 'undici';
import { connectMesh, serveAgent, type AgentServer, type Mesh } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';

const MiB = 1024 * 1024;

/** A JSON-RPC SendMessage whose params nest `depth` arrays deep (`size` bytes when depth fills it). */
function nestedBody(depth: number): Buffer {
  return Buffer.from(`{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":${'['.repeat(depth)}${']'.repeat(depth)}}}`);
}

/** Resident set size of a process (Linux). */
function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) * 1024;
}

/**
 * The flood, from its own process (as a hostile peer would be): `count` requests at once, each body
 * `depth` arrays deep, over mTLS with the given identity. Resolves with each answer's JSON-RPC error code.
 */
const FLOOD = `
  import { request } from 'node:https';
  import { readFileSync } from 'node:fs';
  const o = JSON.parse(process.env.FLOOD);
  const d = o.depth;
  const body = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":' + '['.repeat(d) + ']'.repeat(d) + '}}');
  const one = () => new Promise((resolve, reject) => {
    const req = request(o.url, {
      method: 'POST', ca: readFileSync(o.bundle), cert: readFileSync(o.cert), key: readFileSync(o.key), checkServerIdentity: () => undefined,
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', 'content-length': body.length },
    }, (res) => { let t = ''; res.setEncoding('utf8'); res.on('data', (c) => { t += c; }); res.on('end', () => resolve(JSON.parse(t).error?.code ?? null)); });
    req.on('error', reject);
    // The sidecar answers before reading the body, then closes the connection a moment later while this
    // peer may still be writing (a lingering close): a reset after the answer is the expected end, not a
    // crash of the flood. A reset before the answer still rejects through the request's own error.
    req.on('socket', (socket) => socket.on('error', () => {}));
    req.end(body);
  });
  Promise.all(Array.from({ length: o.count }, one)).then((codes) => process.stdout.write(JSON.stringify(codes)), (err) => { console.error(err); process.exit(1); });
`;

function flood(options: { url: string; bundle: string; cert: string; key: string; depth: number; count: number }): Promise<(number | null)[]> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', FLOOD], { env: { ...process.env, FLOOD: JSON.stringify(options) }, stdio: ['ignore', 'pipe', 'pipe'] });
  // A hostile peer encrypts on its own machine: here its CPU must not be taken from the mesh under test.
  if (child.pid !== undefined) setPriority(child.pid, 19);
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as (number | null)[]) : reject(new Error(`flood exited with ${code}: ${err}`)))));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

describe('bounded inspection on the inbound listener', () => {
  let mesh: TestMesh;
  let agent: AgentServer;
  let target: SidecarProcess;
  let caller: SidecarProcess;
  let client: Mesh;
  let noisy: Agent;
  let noisyFiles: { bundle: string; cert: string; key: string };
  let posts = 0;

  before(async () => {
    mesh = await createTestMesh({ backend: 'embedded' });
    agent = await serveAgent({
      name: 'deep', executor: echoExecutor(),
      configure: (app) => app.use((req, _res, next) => { if (req.method === 'POST') posts++; next(); }),
    });
    target = await mesh.sidecar('deep', { agent: { url: agent.url } });
    caller = await mesh.sidecar('polite');
    await waitForAgent(caller, 'deep');
    client = connectMesh({ url: caller.outbound });
    const files = await mesh.pki.issue(`spiffe://${mesh.trustDomain}/agent/noisy`);
    noisyFiles = files;
    noisy = new Agent({
      connections: 20,
      connect: {
        ca: readFileSync(files.bundle, 'utf8'), cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8'),
        rejectUnauthorized: true, checkServerIdentity: () => undefined,
      },
    });
  });
  after(async () => {
    await noisy?.close();
    await mesh?.close();
    await agent?.close();
  });

  const direct = async (body: Buffer) => {
    const res = await undiciFetch(`${target.inbound}/a2a/deep`, {
      method: 'POST', body, dispatcher: noisy, headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    });
    return { status: res.status, body: await res.json() as { error?: { code: number; message: string } } };
  };
  const timedCall = async () => {
    const started = performance.now();
    await client.send('deep', 'hello');
    return performance.now() - started;
  };

  test('a 10,000-deep body gets a JSON-RPC error and never reaches the agent', async () => {
    const before = posts;
    const answer = await direct(nestedBody(10_000));
    assert.equal(answer.body.error?.code, -32600);
    assert.match(answer.body.error?.message ?? '', /nests JSON deeper than 64 levels \(limits.maxJsonDepth\)/);
    assert.equal(posts, before, 'the agent saw nothing');
  });

  test('20 x 4 MiB nested bodies: RSS grows < 50 MB, other callers stay within 2x their latency', async (t) => {
    const depth = Math.floor((4 * MiB - 100) / 2);
    assert.ok(nestedBody(depth).length <= 4 * MiB, 'within limits.maxBody, so the depth guard (not the size limit) must stop it');
    const options = { url: `${target.inbound}/a2a/deep`, ...noisyFiles, depth };
    // Warm up: the same shapes once, then the unloaded baseline.
    assert.deepEqual(await flood({ ...options, count: 2 }), [-32600, -32600]);
    for (let i = 0; i < 10; i++) await timedCall();
    const baseline: number[] = [];
    for (let i = 0; i < 30; i++) baseline.push(await timedCall());
    const rssBefore = rssBytes(target.process.pid ?? 0);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, rssBytes(target.process.pid ?? 0)); }, 10);
    const before = posts;
    let flooding = true;
    const flooded = flood({ ...options, count: 20 }).finally(() => { flooding = false; });
    const during: number[] = [];
    while (flooding || during.length < 5) during.push(await timedCall());
    const codes = await flooded;
    clearInterval(sampler);
    rssPeak = Math.max(rssPeak, rssBytes(target.process.pid ?? 0));
    assert.deepEqual(codes, Array.from({ length: 20 }, () => -32600));
    assert.equal(posts - before, during.length, 'only the polite calls reached the agent');
    const growth = (rssPeak - rssBefore) / MiB;
    t.diagnostic(`RSS +${growth.toFixed(1)} MiB; polite calls: median ${median(baseline).toFixed(1)} ms before, ${median(during).toFixed(1)} ms during the flood (${during.length} calls)`);
    assert.ok(growth < 50, `RSS grew by ${growth.toFixed(1)} MiB`);
    // A floor of 5 ms keeps scheduler noise on a busy machine from counting as a slowdown.
    const base = Math.max(median(baseline), 5);
    assert.ok(median(during) <= 2 * base, `median latency ${median(during).toFixed(1)} ms under the flood vs ${median(baseline).toFixed(1)} ms before`);
  });
});
