// [long] Many hosts: NATS and the online CA on one network namespace, two agents with their sidecars on
// two others, each with its own address on a private test subnet (test/support/netns.ts). Nothing can
// lean on 127.0.0.1 between sidecars: advertise addresses, join tokens, SVIDs, NATS URLs cross hosts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRecordVerifier, openRegistry, type Registry } from '../registry/index.ts';
import { caInit } from '../sidecar/identity/index.ts';
import { startCaProcess, type CaProcess } from './support/ca-process.ts';
import { startNatsServer, type NatsServer } from './support/nats-server.ts';
import { createTestHosts, netnsUnavailable, type TestHost, type TestHosts } from './support/netns.ts';
import { ROOT, runCli, startSidecarProcess, type SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

const TD = 'hosts.test';
const unavailable = netnsUnavailable();
const CHILD_TIMEOUT_MS = 60_000;

/** Runs a node script under tsx on `host`; resolves with its first stdout line (a long-running child) or all output (one that exits). */
function nodeOn(host: TestHost, script: string, args: string[], env: Record<string, string> = {}): { child: ChildProcess; firstLine: Promise<string>; done: Promise<{ code: number | null; out: string }> } {
  const [program = 'ip', ...argv] = [...host.launcher, process.execPath, '--import', 'tsx', join(ROOT, script), ...args];
  const child = spawn(program, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, timeout: CHILD_TIMEOUT_MS });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before printing:\n${err}`)));
  });
  firstLine.catch(() => undefined);
  const done = new Promise<{ code: number | null; out: string }>((resolve) => child.once('exit', (code) => resolve({ code, out: `${out}${err}` })));
  return { child, firstLine, done };
}

describe('[long] many hosts (network namespaces)', { skip: unavailable === undefined ? false : `many-hosts skipped: ${unavailable}` }, () => {
  let net: TestHosts;
  let dir = '';
  let nats: NatsServer | undefined;
  let ca: CaProcess | undefined;
  let view: Registry | undefined;
  const children: ChildProcess[] = [];
  const sidecars: SidecarProcess[] = [];
  let alpha: SidecarProcess;
  let beta: SidecarProcess;
  let infra: TestHost;
  let hostA: TestHost;
  let hostB: TestHost;

  before(async () => {
    net = await createTestHosts(3);
    [infra, hostA, hostB] = net.hosts as [TestHost, TestHost, TestHost];
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-hosts-'));
    const caDir = join(dir, 'ca');
    await caInit({ trustDomain: TD, dir: caDir });
    nats = await startNatsServer({ host: infra.ip, launcher: infra.launcher });
    ca = await startCaProcess(caDir, [], { host: infra.ip, launcher: infra.launcher });
    assert.match(ca.url, new RegExp(`^https://${infra.ip.replaceAll('.', '\\.')}:\\d+`), 'the CA listens on the infra host');

    const start = async (host: TestHost, name: string, listen: Record<string, string>, extra: Record<string, unknown>): Promise<SidecarProcess> => {
      const agent = nodeOn(host, 'test/support/echo-agent-child.ts', [name]);
      children.push(agent.child);
      const agentUrl = await agent.firstLine;
      const made = await runCli(['ca', 'token', '--dir', caDir, '--id', `spiffe://${TD}/agent/${name}`]);
      assert.equal(made.code, 0, made.stderr);
      mkdirSync(join(dir, name));
      return startSidecarProcess({
        agent: { url: agentUrl },
        registry: { nats: [nats?.url], ttl: '5s' },
        identity: { trustDomain: TD, bundle: join(caDir, 'ca.pem'), ca: ca?.url, token: made.stdout.trim(), cert: join(dir, name, 'cert.pem'), key: join(dir, name, 'key.pem') },
        listen: { outbound: '127.0.0.1:0', admin: '127.0.0.1:0', ...listen },
        ...extra,
      }, { launcher: host.launcher, timeoutMs: 60_000 });
    };
    // alpha binds every address and advertises its own; beta binds its host address (advertised as is).
    [alpha, beta] = await Promise.all([
      start(hostA, 'alpha', { inbound: '0.0.0.0:0' }, { advertise: hostA.ip }),
      start(hostB, 'beta', { inbound: `${hostB.ip}:0` }, {}),
    ]);
    sidecars.push(alpha, beta);
    // The test's own view of the registry, from the root namespace over the bridge.
    // Records are signed by each sidecar's SVID; the view verifies them against the mesh CA like a sidecar.
    const bundle = readFileSync(join(caDir, 'ca.pem'), 'utf8');
    view = await openRegistry({ nats: nats.url, ttlMs: 5000, name: 'many-hosts-view', verifier: createRecordVerifier({ trustDomain: TD, bundle: () => bundle }) });
  });

  after(async () => {
    await Promise.allSettled(sidecars.map((s) => s.stop('SIGKILL')));
    for (const c of children) c.kill('SIGKILL');
    await Promise.allSettled([view?.close(), ca?.stop(), nats?.[Symbol.asyncDispose]()]);
    const errors = await net?.close();
    if (errors && errors.length > 0) console.error('many-hosts cleanup:', errors.join('; '));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('each sidecar registers its own host address, never 127.0.0.1', async () => {
    const records = await waitFor('alpha and beta registered', () => {
      const a = view?.agentInstances('alpha')[0];
      const b = view?.agentInstances('beta')[0];
      return a && b ? { a, b } : undefined;
    }, 30_000);
    assert.equal(new URL(records.a.endpoint).hostname, hostA.ip, 'alpha advertises its host address');
    assert.equal(new URL(records.b.endpoint).hostname, hostB.ip, 'beta advertises the address it binds');
    assert.equal(records.a.identity, `spiffe://${TD}/agent/alpha`);
    assert.equal(records.b.identity, `spiffe://${TD}/agent/beta`);
  });

  test('agents on different hosts call each other through their sidecars (mTLS with SVIDs from the online CA)', async () => {
    for (const [host, from, to] of [[hostA, alpha, 'beta'], [hostB, beta, 'alpha']] as const) {
      const call = nodeOn(host, 'test/support/mesh-call-child.ts', [to, `hello ${to} from ${host.ip}`], { AGENTMESH_URL: from.outbound });
      const { code, out } = await call.done;
      assert.equal(code, 0, out);
      assert.deepEqual(JSON.parse(out.trim().split('\n')[0] ?? '{}'), { text: `echo: hello ${to} from ${host.ip}` });
    }
  });

  test("the advertised inbound addresses answer TCP from another host (the test's own namespace)", async () => {
    for (const name of ['alpha', 'beta']) {
      const endpoint = view?.agentInstances(name)[0]?.endpoint;
      assert.ok(endpoint, `${name} has a record`);
      const url = new URL(endpoint);
      await new Promise<void>((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname, () => { socket.destroy(); resolve(); });
        socket.once('error', reject);
      });
    }
  });
});
