// "NATS with doors" on the real Debian nats-server: the config `agentmesh nats config` prints keeps
// out clients without a mesh certificate, lets mallory write none of beta's keys nor purge or delete
// the bucket (NATS permission errors), and two sidecars with mTLS to NATS still register and call.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { jetstreamManager } from '@nats-io/jetstream';
import { stringify } from 'yaml';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { natsAccessOptions } from '../registry/nats-connect.ts';
import { permissionViolation } from '../registry/nats-bucket.ts';
import { callerExecutor } from './fixtures/agents.ts';
import { createTestPki, type IdentityFiles, type TestPki } from './support/certs.ts';
import { waitForAgent } from './support/mesh.ts';
import { startNatsServer, type NatsServer } from './support/nats-server.ts';
import { runCli, startSidecarProcess, type SidecarProcess } from './support/sidecar-process.ts';

const TD = 'mesh.test';
const SEND = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'SendMessage',
  params: { message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'who am I?' }] } },
});

function pemOf(files: IdentityFiles) {
  return { certPem: readFileSync(files.cert, 'utf8'), keyPem: readFileSync(files.key, 'utf8'), bundlePem: readFileSync(files.bundle, 'utf8') };
}

/** Asserts that `action` fails with a NATS permission violation on a subject matching `subject`. */
/** Polls `check` until it returns a value (10 s). */
async function waitForValue<T>(check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function assertDenied(what: string, action: () => Promise<unknown>, subject: RegExp): Promise<void> {
  const err = await action().then(() => undefined, (e: unknown) => e);
  const denied = permissionViolation(err);
  assert.ok(denied, `${what}: expected a NATS permission violation, got ${err === undefined ? 'success' : String(err)}`);
  assert.equal(denied.operation, 'publish', what);
  assert.match(denied.subject, subject, what);
}

describe('NATS with doors (agentmesh nats config on nats-server 2.9)', () => {
  const bucket = `b${Math.random().toString(36).slice(2, 10)}`;
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-natsauth-'));
  let pki: TestPki;
  let nats: NatsServer;
  let ids: Record<'alpha' | 'beta' | 'mallory' | 'admin' | 'server', IdentityFiles>;
  let agent: AgentServer;
  let alpha: SidecarProcess;
  let beta: SidecarProcess;
  const clients: NatsConnection[] = [];
  const registry = (extra: Record<string, unknown> = {}) => ({ nats: nats.url, tls: true, bucket, ttl: '3s', ...extra });
  /** A NATS client with `files`' certificate, connected as the sidecar connects. */
  const clientAs = async (files: IdentityFiles): Promise<NatsConnection> => {
    const access = await natsAccessOptions(nats.url, { tls: { current: () => pemOf(files), serverId: `spiffe://${TD}/nats` } });
    const nc = await connect({ ...access, timeout: 5000, maxReconnectAttempts: 0 });
    clients.push(nc);
    return nc;
  };

  before(async () => {
    pki = await createTestPki({ trustDomain: TD });
    ids = {
      alpha: await pki.issue(`spiffe://${TD}/agent/alpha`),
      beta: await pki.issue(`spiffe://${TD}/agent/beta`),
      mallory: await pki.issue(`spiffe://${TD}/agent/mallory`),
      admin: await pki.issue(`spiffe://${TD}/admin`),
      server: await pki.issue(`spiffe://${TD}/nats`),
    };
    const printed = await runCli(['nats', 'config', '--trust-domain', TD, '--bucket', bucket,
      '--agent', 'alpha', '--agent', 'beta=beta-tools', '--agent', 'mallory',
      '--store-dir', join(dir, 'jetstream'), '--server-cert', ids.server.cert, '--server-key', ids.server.key, '--bundle', ids.server.bundle]);
    assert.equal(printed.code, 0, printed.stderr);
    nats = await startNatsServer({ config: printed.stdout });
    const adminConfig = join(dir, 'admin.yaml');
    writeFileSync(adminConfig, stringify({ registry: registry(), identity: ids.admin }));
    const init = await runCli(['nats', 'init', '--config', adminConfig]);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, new RegExp(`KV bucket '${bucket}' ready`));
    agent = await serveAgent({ name: 'beta', executor: callerExecutor() });
    beta = await startSidecarProcess({ registry: registry(), identity: ids.beta, agent: { url: agent.url } });
    alpha = await startSidecarProcess({ registry: registry(), identity: ids.alpha });
    await waitForAgent(alpha, 'beta');
  });
  after(async () => {
    await Promise.allSettled(clients.map((nc) => nc.close()));
    await Promise.allSettled([alpha?.stop('SIGKILL'), beta?.stop('SIGKILL')]);
    await agent?.close();
    await nats?.[Symbol.asyncDispose]();
    await pki?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('two sidecars with mTLS to NATS register, and a call goes through', async () => {
    const res = await fetch(`${alpha.outbound}/a2a/beta`, { method: 'POST', body: SEND, headers: { 'content-type': 'application/json', 'a2a-version': '1.0' } });
    assert.equal(res.status, 200);
    const body = await res.json() as { result?: { message?: { parts?: { text?: string }[] } } };
    assert.equal(body.result?.message?.parts?.[0]?.text, `spiffe://${TD}/agent/alpha`);
  });

  test('audit records land under each identity\'s own subject; another identity cannot append there', async () => {
    const admin = await clientAs(ids.admin);
    const jsm = await jetstreamManager(admin);
    const subjects = await waitForValue(async () => {
      const info = await jsm.streams.info(`${bucket}-audit`, { subjects_filter: '>' });
      const names = Object.keys(info.state.subjects ?? {});
      return names.some((n) => n.startsWith(`${bucket}-audit.alpha.`)) && names.some((n) => n.startsWith(`${bucket}-audit.beta.`)) ? names : undefined;
    });
    assert.ok(subjects.every((n) => /\.(alpha|beta)\.[A-Za-z0-9_-]+$/.test(n)), subjects.join(' '));
    const mallory = await clientAs(ids.mallory);
    const { jetstream } = await import('@nats-io/jetstream');
    await assertDenied('append to alpha\'s audit', () => jetstream(mallory).publish(`${bucket}-audit.alpha.forged`, '{}', { timeout: 2000 }), /-audit\.alpha\./);
  });

  test('a client without a mesh certificate cannot connect at all', async () => {
    const anonymous = await natsAccessOptions(nats.url, {});
    await assert.rejects(connect({ ...anonymous, timeout: 3000, maxReconnectAttempts: 0 }));
    // Trusting the server is not enough: the server asks for a client certificate it can map.
    const trustOnly = { caFile: ids.server.bundle, checkServerIdentity: () => undefined };
    await assert.rejects(connect({ ...anonymous, tls: trustOnly, timeout: 3000, maxReconnectAttempts: 0 }));
    // A certificate from the mesh CA whose SPIFFE ID the config does not name is refused too.
    const stranger = await pki.issue(`spiffe://${TD}/agent/stranger`);
    await assert.rejects(clientAs(stranger), (err: Error) => /Authorization Violation/i.test(err.message));
  });

  test("mallory cannot write, delete or purge beta's keys or the bucket", async () => {
    const nc = await clientAs(ids.mallory);
    const kv: KV = await new Kvm(nc).open(bucket);
    const betaKeys: string[] = [];
    for await (const key of await kv.keys('agents.beta.>')) betaKeys.push(key);
    const key = betaKeys[0];
    assert.ok(key, 'beta is registered');
    const before = await kv.get(key);
    const own = /^\$KV\.[^.]+\.agents\.beta\./;
    await assertDenied('put over beta', () => kv.put(key, '{"forged":true}'), own);
    await assertDenied('put a new beta key', () => kv.put('agents.beta.evil', '{}'), own);
    await assertDenied('create beta tools', () => kv.put('mcp.beta-tools.evil', '{}'), /\.mcp\.beta-tools\./);
    await assertDenied('delete beta', () => kv.delete(key), own);
    await assertDenied('purge beta', () => kv.purge(key), own);
    const jsm = await jetstreamManager(nc);
    await assertDenied('purge the bucket', () => jsm.streams.purge(`KV_${bucket}`), /\.STREAM\.PURGE\./);
    await assertDenied('delete a stored message', () => jsm.streams.deleteMessage(`KV_${bucket}`, before?.revision ?? 1), /\.STREAM\.MSG\.DELETE\./);
    await assertDenied('delete the bucket', () => kv.destroy(), /\.STREAM\.DELETE\./);
    await assertDenied('recreate the bucket with other settings', () => jsm.streams.update(`KV_${bucket}`, { max_age: 1 }), /\.STREAM\.UPDATE\./);
    // Reading is allowed, and mallory's own key is writable: the refusals above are permissions, not a broken client.
    await kv.put('agents.mallory.m1', '{}');
    assert.equal((await kv.get(key))?.operation, 'PUT');
    assert.equal((await kv.get(key))?.revision === undefined, false);
    const res = await fetch(`${alpha.outbound}/a2a/beta`, { method: 'POST', body: SEND, headers: { 'content-type': 'application/json', 'a2a-version': '1.0' } });
    assert.equal(res.status, 200, 'beta is still callable');
  });

  test('beta may delete its own key (a graceful withdraw works under these permissions)', async () => {
    const nc = await clientAs(ids.beta);
    const kv = await new Kvm(nc).open(bucket);
    await kv.put('agents.beta.scratch', '{}');
    await kv.delete('agents.beta.scratch');
    assert.equal((await kv.get('agents.beta.scratch'))?.operation, 'DEL');
  });

  test('a sidecar names the bucket its NATS user may not use', async () => {
    const run = await runSidecarOnce(registry({ bucket: `${bucket}x` }));
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`REGISTRY_UNAVAILABLE: this NATS user may not use KV bucket '${bucket}x'.*registry\\.bucket`));
  });

  test('a renewed certificate is presented at the next reconnect', async () => {
    // The client starts as mallory; the "renewal" hands it beta's certificate, which NATS maps to beta.
    let current = pemOf(ids.mallory);
    const access = await natsAccessOptions(nats.url, { tls: { current: () => current, serverId: `spiffe://${TD}/nats` } });
    const nc = await connect({ ...access, timeout: 5000, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    clients.push(nc);
    const kv = await new Kvm(nc).open(bucket);
    await assertDenied('mallory before the swap', () => kv.put('agents.beta.renewed', '{}'), /\.agents\.beta\./);
    current = pemOf(ids.beta);
    const reconnected = (async () => { for await (const s of nc.status()) if (s.type === 'reconnect') return; })();
    await nats.restart();
    await reconnected;
    await kv.put('agents.beta.renewed', '{}');
    await kv.delete('agents.beta.renewed');
    await waitForAgent(alpha, 'beta'); // the sidecars are back too
  });

  // Last: it takes the bucket away.
  test('a sidecar may not create a missing bucket and says who does', async () => {
    const admin = await clientAs(ids.admin);
    await (await new Kvm(admin).open(bucket)).destroy();
    const run = await runSidecarOnce(registry());
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`REGISTRY_UNAVAILABLE: KV bucket '${bucket}' does not exist .*agentmesh nats init`));
  });

  /** Runs `agentmesh sidecar` as alpha with `registryConfig` until it exits. */
  async function runSidecarOnce(registryConfig: Record<string, unknown>) {
    const config = join(dir, `sidecar-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(config, stringify({ registry: registryConfig, identity: ids.alpha, listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: '127.0.0.1:0' } }));
    return runCli(['sidecar', '--config', config], { timeoutMs: 30_000 });
  }
});
